// Command xcaddy-build builds a custom Caddy with authgate from the
// manifest xcaddy.json, by running xcaddy with the versions it names:
//
//	go run ./cmd/xcaddy-build            # builds ./authgate
//	go run ./cmd/xcaddy-build -n         # prints the xcaddy command only
//
// xcaddy itself comes from `go install github.com/caddyserver/xcaddy/cmd/xcaddy@latest`.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Manifest is xcaddy.json: the Caddy version and the modules to build with.
type Manifest struct {
	Caddy        string       `json:"caddy"`
	Dependencies []Dependency `json:"dependencies"`
}

// Dependency is one module: a version, or a local replacement path.
type Dependency struct {
	Module  string `json:"module"`
	Version string `json:"version,omitempty"`
	Replace string `json:"replace,omitempty"`
}

// LoadManifest reads and checks a manifest.
func LoadManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	if !strings.HasPrefix(m.Caddy, "v2.") {
		return nil, fmt.Errorf("%s: caddy must be a v2 version such as v2.11.9", path)
	}
	for _, d := range m.Dependencies {
		if d.Module == "" {
			return nil, errors.New(path + ": a dependency has no module")
		}
	}
	return &m, nil
}

// Args are xcaddy's arguments for the manifest.
func (m *Manifest) Args(output string) []string {
	args := []string{"build", m.Caddy}
	for _, d := range m.Dependencies {
		w := d.Module
		if d.Version != "" {
			w += "@" + d.Version
		}
		if d.Replace != "" {
			w += "=" + d.Replace
		}
		args = append(args, "--with", w)
	}
	return append(args, "--output", output)
}

func main() {
	manifest := flag.String("manifest", "xcaddy.json", "the build manifest")
	output := flag.String("o", "authgate", "the binary to write")
	dryRun := flag.Bool("n", false, "print the xcaddy command instead of running it")
	flag.Parse()
	m, err := LoadManifest(*manifest)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xcaddy-build:", err)
		os.Exit(1)
	}
	args := m.Args(*output)
	if *dryRun {
		fmt.Println("xcaddy " + strings.Join(args, " "))
		return
	}
	cmd := exec.Command("xcaddy", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "xcaddy-build:", err)
		os.Exit(1)
	}
}
