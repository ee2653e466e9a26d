package caddymodule

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// docDirectives reads docs/configuration.md: for each "## ... `block`"
// section, the directives that start its table rows ("| `name ...").
func docDirectives(t *testing.T) map[string][]string {
	t.Helper()
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	heading := regexp.MustCompile("^## .*`([a-z_]+)`")
	row := regexp.MustCompile("^\\| `([a-z_]+)")
	out := map[string][]string{}
	block := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			block = m[1]
			out[block] = []string{}
		} else if strings.HasPrefix(line, "## ") {
			block = ""
		} else if m := row.FindStringSubmatch(line); m != nil && block != "" {
			out[block] = append(out[block], m[1])
		}
	}
	return out
}

// TestConfigurationDocMatchesTheParser: docs/configuration.md lists every
// directive the Caddyfile parser accepts, and nothing it refuses.
func TestConfigurationDocMatchesTheParser(t *testing.T) {
	doc := docDirectives(t)
	parser := map[string][]string{
		"authgate":         slices.Sorted(maps.Keys(globalDirectives)),
		"authgate_protect": slices.Sorted(maps.Keys(protectDirectives)),
		// The API handlers take no subdirectives (their parsers refuse any:
		// TestCaddyfileErrorsNameTheDirective).
		"authgate_api":    {},
		"authgate_manage": {},
	}
	for block, want := range parser {
		got, ok := doc[block]
		if !ok {
			t.Errorf("docs/configuration.md has no section for %s", block)
			continue
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the doc lists %v, the parser accepts %v", block, got, want)
		}
	}
	for block := range doc {
		if _, ok := parser[block]; !ok {
			t.Errorf("docs/configuration.md documents %s, which the parser does not have", block)
		}
	}
}

// TestConfigurationDocExamplesAdapt: the doc's Caddyfile examples are
// valid, each as a site (handlers) or as global options.
func TestConfigurationDocExamplesAdapt(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) == 0 {
		t.Fatal("no caddyfile examples")
	}
	t.Setenv("AUTHGATE_KEY", "YXV0aGdhdGUtZG9jcy10ZXN0LWtleS0zMi1ieXRlcy1sb25nLW9r")
	for _, b := range blocks {
		config := b[1]
		if !strings.HasPrefix(config, "{") {
			config = ":8080 {\n" + config + "}\n"
		}
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(config), nil); err != nil {
			t.Errorf("example does not adapt: %v\n%s", err, config)
		}
	}
}
