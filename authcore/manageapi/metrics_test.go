package manageapi_test

import (
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/manageapi"
)

// countingMetrics counts the Manage API's requests and the logins.
type countingMetrics struct {
	mu     sync.Mutex
	manage map[string]int // route/result
	logins map[string]int // result
}

func (m *countingMetrics) ManageRequest(route, result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.manage[route+"/"+result]++
}

func (m *countingMetrics) Login(api, result string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logins[api+"/"+result]++
}

func (*countingMetrics) StepUp(string, string)               {}
func (*countingMetrics) GuardDecision(string)                {}
func (*countingMetrics) StoreDuration(string, time.Duration) {}

// Every Manage request is counted by route and result (SPEC §10), and a
// password validation refused by an outage counts as a login with result
// unavailable.
func TestManageRequestsAreCounted(t *testing.T) {
	m := &countingMetrics{manage: map[string]int{}, logins: map[string]int{}}
	e := newEnv(t, memoryKind(), func(o *authcore.Options) { o.Metrics = m })
	e.validate(t, "bob", map[string]any{}).wantOK(t)
	e.validate(t, "bob", map[string]any{"password": "Wrong-1"}).wantError(t, manageapi.InvalidUserCredentials)
	e.validate(t, "bob", map[string]any{}, "Authorization", basic("backend", "wrong")).wantError(t, manageapi.InvalidServiceCredentials)
	e.call(t, "POST", "/v2/user/send/otp", `{"userName": "bob"`).wantError(t, manageapi.InvalidRequest)
	if r := e.call(t, "GET", "/v2/nowhere", ""); r.status != 404 {
		t.Fatalf("unknown route = %d", r.status)
	}
	want := map[string]int{
		"validate_password/success":                     1,
		"validate_password/invalid_user_credentials":    1,
		"validate_password/invalid_service_credentials": 1,
		"send_otp/invalid_request":                      1,
		"unknown/invalid_request":                       1,
	}
	if !maps.Equal(m.manage, want) {
		t.Errorf("manage requests counted %v, want %v", m.manage, want)
	}
	if m.logins["manage/success"] != 1 || m.logins["manage/invalid_credentials"] != 1 {
		t.Errorf("logins counted %v, want one success and one invalid_credentials", m.logins)
	}

	down := &countingMetrics{manage: map[string]int{}, logins: map[string]int{}}
	mem := memoryKind()
	failing := storeKind{name: "failing", open: func(t testing.TB, clk *clock) authcore.Store { return failingStore{mem.open(t, clk)} }}
	e = newEnv(t, failing, func(o *authcore.Options) { o.Metrics = down })
	e.validate(t, "bob", map[string]any{}).wantError(t, manageapi.ServiceUnavailable)
	if down.manage["validate_password/unavailable"] != 1 || down.logins["manage/unavailable"] != 1 {
		t.Errorf("an outage counted manage %v and logins %v, want validate_password/unavailable and a login unavailable", down.manage, down.logins)
	}
}
