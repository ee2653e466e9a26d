package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestManifestMatchesGoMod: xcaddy.json builds the Caddy version this
// module is tested against, with this module replaced by the checkout.
func TestManifestMatchesGoMod(t *testing.T) {
	m, err := LoadManifest("../../xcaddy.json")
	if err != nil {
		t.Fatal(err)
	}
	gomod, _ := os.ReadFile("../../go.mod")
	want := regexp.MustCompile(`github.com/caddyserver/caddy/v2 (v\S+)`).FindSubmatch(gomod)
	if want == nil || m.Caddy != string(want[1]) {
		t.Fatalf("xcaddy.json builds Caddy %s, go.mod requires %s", m.Caddy, want)
	}
	got := strings.Join(m.Args("authgate"), " ")
	if got != "build "+m.Caddy+" --with github.com/authgate/authgate@v0.0.0=. --output authgate" {
		t.Fatalf("xcaddy args: %s", got)
	}
}

func TestManifestErrorsAreClear(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"not json":  `{`,
		"no caddy":  `{"dependencies": []}`,
		"no module": `{"caddy": "v2.11.9", "dependencies": [{"version": "v1"}]}`,
	} {
		path := dir + "/" + strings.ReplaceAll(name, " ", "_") + ".json"
		_ = os.WriteFile(path, []byte(body), 0o600)
		if _, err := LoadManifest(path); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
