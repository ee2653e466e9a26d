package main

import (
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestReadmeWalkthrough starts the demo exactly as the README's first line
// says (Caddyfile.example, from the repository root) and runs the README's
// walk-through block with bash, as printed.
func TestReadmeWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the walk-through needs curl")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- walkthrough")
	if !ok {
		t.Fatal("README has no walkthrough marker")
	}
	_, block, _ := strings.Cut(after, "```sh\n")
	script, _, _ := strings.Cut(block, "```")

	demo := exec.Command(binary, "run", "--config", "Caddyfile.example")
	demo.Dir = "../.."
	logs := &syncBuffer{}
	demo.Stdout, demo.Stderr = logs, logs
	demo.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_DATA_HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gateway{cmd: demo, logs: logs}
	t.Cleanup(g.stop)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://localhost:8080/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not start (are ports 8080, 9000 and 2019 free?): %v\n%s", err, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}

	out, err := exec.Command("bash", "-euo", "pipefail", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("walk-through failed: %v\n%s", err, out)
	}
	for _, want := range []string{`"credentialsId": "1001"`, `"identityId": "2001"`, `"steppedUp": "false"`,
		`{"errorCode":"STEP_UP_REQUIRED"} 403`, "code sent: 204", "verified: 204", `"path": "/api/payments/p-1"`,
		`"steppedUp": "true"`, "logout: 204", "after logout: 401"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("walk-through output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(logs.String(), "Demo-Pass-123") {
		t.Error("the demo logged a password")
	}
}
