package authgate

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// routePattern is how a route is written in a handler's route table
// ("POST /login_with_password") and, in backticks, in the docs.
var routePattern = regexp.MustCompile(`"((?:GET|POST|PUT|PATCH|DELETE) /[^"]*)"`)

// servedRoutes reads the route patterns of a handler package's sources.
// A pattern that ends in "/" is completed in code (the simulator's
// outcomes), so the doc must show it followed by something.
func servedRoutes(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
			routes = append(routes, m[1])
		}
	}
	if len(routes) == 0 {
		t.Fatalf("no routes found in %s", dir)
	}
	return routes
}

// TestAPIDocsListEveryRoute: docs/multi-api.md and docs/manage-api.md name
// every route their handler serves, as "`METHOD /path".
func TestAPIDocsListEveryRoute(t *testing.T) {
	for doc, dir := range map[string]string{
		"docs/multi-api.md":  "authcore/multiapi",
		"docs/manage-api.md": "authcore/manageapi",
	} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, route := range servedRoutes(t, dir) {
			if !strings.Contains(string(text), "`"+route) {
				t.Errorf("%s does not document %s", doc, route)
			}
		}
	}
}
