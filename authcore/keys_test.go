package authcore_test

import (
	"testing"

	"github.com/authgate/authgate/authcore"
)

// Every key Keys builds is found in StoreKeys under its own kind, so the
// table is complete and its patterns tell the kinds apart.
func TestEveryKeyIsInTheTable(t *testing.T) {
	k := authcore.Keys
	user := &authcore.User{ID: "1001"}
	stepUp, manage := k.StepUpScope("sid", authcore.PurposeStepUp), k.ManageScope("1001", "otp:+35699000001")
	for _, tc := range []struct{ key, kind string }{
		{k.Session("", "sid"), "session"},
		{k.UserSessions("1001"), "user_sessions"},
		{k.LockoutFailures(k.LockoutAccount(user, "")), "lockout_failures"},
		{k.Lockout(k.LockoutAccount(nil, "nobody@example.com")), "lockout"},
		{k.RateLimit(authcore.LimitLogin, "192.0.2.1", 7), "rate_limit"},
		{k.ManageRateLimitIP(authcore.LimitLogin, "192.0.2.1", 7), "rate_limit_manage_ip"},
		{k.ManageRateLimitUser(authcore.LimitLogin, "alice", 7), "rate_limit_manage_user"},
		{k.Account("1001"), "account"},
		{k.User("1001"), "user"},
		{k.UserEmail("Alice@example.com"), "user_email"},
		{k.UserName("alice"), "user_name"},
		{k.UsersIndex(), "users_index"},
		{k.CodeCooldown(stepUp), "code_cooldown"},
		{k.CodeIssues(manage), "code_issues"},
		{k.CodeTries(stepUp), "code_tries"},
		{k.CodeUsed(manage, "cid"), "code_used"},
		{k.Code(stepUp), "code"},
		{k.Code(manage), "code"},
		{k.PushResolution("123456789012345678"), "push_resolution"},
		{k.PushIssues("sid"), "push_issues"},
		{k.Push("123456789012345678"), "push"},
		{k.MFASession("1001", "token"), "mfa_session"},
		{k.TOTPTries("1001"), "totp_tries"},
		{k.TOTPUsed("1001", 42), "totp_used"},
		{k.DevicesRevoked("1001"), "devices_revoked"},
		{k.RememberedDevice("1001", "token"), "remembered_device"},
	} {
		spec, ok := authcore.KeySpecOf(tc.key)
		if !ok || spec.Name != tc.kind {
			t.Errorf("KeySpecOf(%q) = %q, %v; want %q", tc.key, spec.Name, ok, tc.kind)
		}
		if spec.HashTag == "" || spec.TTL == "" || spec.Owner == "" {
			t.Errorf("%s: the table lacks its hash tag, TTL or owner: %+v", tc.kind, spec)
		}
	}
	if _, ok := authcore.KeySpecOf("c:{sid}:otp"); ok {
		t.Errorf("a key authgate does not write has a kind")
	}
	seen := map[string]bool{}
	for _, s := range authcore.StoreKeys {
		if seen[s.Name] {
			t.Errorf("two kinds named %q", s.Name)
		}
		seen[s.Name] = true
	}
}
