package authcore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
	"github.com/authgate/authgate/authcore/store/memory"
)

type recordingMetrics struct {
	mu     sync.Mutex
	counts map[string]int
}

func (m *recordingMetrics) add(k string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[string]int{}
	}
	m.counts[k]++
}
func (m *recordingMetrics) Login(api, r string)           { m.add("login:" + api + ":" + r) }
func (m *recordingMetrics) StepUp(meth, r string)         { m.add("stepup:" + meth + ":" + r) }
func (m *recordingMetrics) GuardDecision(r string)        { m.add("guard:" + r) }
func (m *recordingMetrics) ManageRequest(route, r string) { m.add("manage:" + route + ":" + r) }
func (m *recordingMetrics) StoreDuration(op string, d time.Duration) {
	if d < 0 {
		panic("negative duration")
	}
	m.add("store:" + op)
}

func TestMetricsCountLoginsGuardDecisionsStepUpsAndStoreCalls(t *testing.T) {
	m := &recordingMetrics{}
	clk := authtest.NewClock(time.Now())
	store := memory.New(clk.Now)
	defer store.Close()
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	gw, err := authcore.New(authcore.Options{Store: store, Users: stepUpUsers(t),
		Tokens: authcore.NewTokens("t", key, clk.Now), Now: clk.Now, Sandbox: true, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, _ = gw.Sessions.Login(ctx, "alice@example.com", "wrong")
	_, _ = gw.Sessions.Login(ctx, "nobody@example.com", "wrong")
	res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	access, _ := gw.Sessions.AccessToken(ctx, res.Session, authcore.IdentityRef{Type: "CONSUMER", ID: "2001"})
	admit(gw, ctx, "", &authcore.GuardPolicy{Token: "access"})
	admit(gw, ctx, "Bearer junk", &authcore.GuardPolicy{Token: "access"})
	admit(gw, ctx, "Bearer "+res.Token, &authcore.GuardPolicy{Token: "access"})
	admit(gw, ctx, "Bearer "+access, &authcore.GuardPolicy{Token: "access", StepUp: true})
	_ = gw.StepUp.IssueOTP(ctx, res.Session, "SMS")
	_ = gw.StepUp.VerifyOTP(ctx, res.Session, "SMS", "000000")
	_ = gw.StepUp.VerifyOTP(ctx, res.Session, "SMS", "123456")
	admit(gw, ctx, "Bearer "+access, &authcore.GuardPolicy{Token: "access", StepUp: true})

	for k, want := range map[string]int{
		"login:multi:invalid_credentials": 2, "login:multi:success": 1,
		"guard:no_token": 1, "guard:invalid_token": 1, "guard:access_token_required": 1,
		"guard:step_up_required": 1, "guard:admitted": 1,
		"stepup:otp:VERIFICATION_CODE_INVALID": 1, "stepup:otp:success": 1,
	} {
		if got := m.counts[k]; got != want {
			t.Errorf("%s = %d, want %d (all: %v)", k, got, want, m.counts)
		}
	}
	for _, op := range []string{"touch_session", "create_session", "save_session", "incr", "setnx", "get", "add_member"} {
		if m.counts["store:"+op] == 0 {
			t.Errorf("no store duration observed for %s: %v", op, fmt.Sprint(m.counts))
		}
	}
}

// A Manage API password validation is a login, and counts as one.
func TestMetricsCountManageLogins(t *testing.T) {
	m := &recordingMetrics{}
	store := memory.New(nil)
	defer store.Close()
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	gw, err := authcore.New(authcore.Options{Store: store, Users: manageUsers(t),
		Tokens: authcore.NewTokens("t", key, time.Now), PasswordHash: testHashParams, Metrics: m,
		LockoutAttempts: 2, RateLimits: map[string]authcore.RateLimit{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, pw := range []string{testPassword, "wrong", "wrong", testPassword} {
		_, _ = gw.ManageMFA.ValidatePassword(ctx, authcore.ValidatePasswordRequest{UserName: "bob", Password: pw})
	}
	for k, want := range map[string]int{"login:manage:success": 1, "login:manage:invalid_credentials": 2, "login:manage:locked": 1} {
		if got := m.counts[k]; got != want {
			t.Errorf("%s = %d, want %d (all: %v)", k, got, want, m.counts)
		}
	}
}
