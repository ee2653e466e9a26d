package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// sharedPortWarning is the start-up WARN of a second instance on a port.
const sharedPortWarning = "another process is already listening on this port"

// TestSecondInstanceOnAPortWarns: Caddy's listeners use SO_REUSEPORT, so a
// second gateway on a port the first serves starts without an error; it
// must at least say so. The first, alone on its port, says nothing.
func TestSecondInstanceOnAPortWarns(t *testing.T) {
	be := newBackend(t)
	port := freePort(t)
	first := startGatewayFixedPorts(t, gatewayConfig("memory", usersFile(t), be.Addr), port, freePort(t))
	second := startGatewayFixedPorts(t, gatewayConfig("memory", usersFile(t), be.Addr), port, freePort(t))
	// The first answers the readiness probe, so wait for the second's own
	// start-up to finish: Caddy logs this once every app has started.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(second.logs.String(), "serving initial configuration") {
		if time.Now().After(deadline) || second.cmd.ProcessState != nil {
			t.Fatalf("the second gateway did not start:\n%s", second.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(second.logs.String(), sharedPortWarning) || !strings.Contains(second.logs.String(), fmt.Sprintf(`"port":%d`, port)) {
		t.Fatalf("the second gateway did not warn about the shared port:\n%s", second.logs)
	}
	if strings.Contains(first.logs.String(), sharedPortWarning) {
		t.Fatalf("the first gateway warned, alone on its port:\n%s", first.logs)
	}
}
