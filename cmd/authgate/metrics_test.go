package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// scrape reads one sample of Caddy's admin /metrics endpoint (0 if absent).
func scrape(t *testing.T, admin int, series string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", admin))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` ([0-9.e+]+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func TestMetricsInCaddysRegistrySurviveReloads(t *testing.T) {
	be := newBackend(t)
	port, admin := freePort(t), freePort(t)
	users := usersFile(t)
	config := func(idle string) string {
		cfg := gatewayConfig("memory", users, be.Addr, "session_idle "+idle)
		return strings.NewReplacer("{PORT}", strconv.Itoa(port), "{ADMIN}", strconv.Itoa(admin)).Replace(cfg)
	}
	g := startGatewayFixedPorts(t, config("5m"), port, admin)
	request(t, "POST", g.URL+"/multi/login_with_password", `{"email":"alice@example.com","password":{"value":"wrong"}}`)
	auth := loginAs(t, g, "alice@example.com")
	request(t, "GET", g.URL+"/api/x", "", bearerH(auth)...) // AUTH token: access_token_required
	request(t, "GET", g.URL+"/api/x", "")                   // no token
	want := map[string]float64{
		`authgate_logins_total{api="multi",result="success"}`:             1,
		`authgate_logins_total{api="multi",result="invalid_credentials"}`: 1,
		`authgate_guard_decisions_total{result="access_token_required"}`:  1,
		`authgate_guard_decisions_total{result="no_token"}`:               1,
	}
	for series, v := range want {
		if got := scrape(t, admin, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
	if scrape(t, admin, `authgate_store_duration_seconds_count{op="touch_session"}`) < 1 {
		t.Error("no store timing for touch_session")
	}
	// A reload registers the collectors again without error; counts go on.
	g.reload(t, admin, config("6m"))
	loginAs(t, g, "alice@example.com")
	if got := scrape(t, admin, `authgate_logins_total{api="multi",result="success"}`); got != 2 {
		t.Errorf("after reload, logins success = %v, want 2", got)
	}
}
