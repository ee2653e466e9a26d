package manageapi_test

import (
	"context"
	"slices"
	"testing"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/manageapi"
)

// login opens a session of userName's email through the core, as the
// Multi API does, from addr with userAgent.
func (e *env) login(t *testing.T, email, addr, userAgent string) *authcore.LoginResult {
	t.Helper()
	ctx := authcore.WithUserAgent(authcore.WithRequestInfo(context.Background(), "ref", addr), userAgent)
	res, err := e.gw.Sessions.Login(ctx, email, password)
	if err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return res
}

func sessionIDs(t *testing.T, r reply) []string {
	t.Helper()
	list, ok := r.body["sessions"].([]any)
	if r.status != 200 || !ok {
		t.Fatalf("list sessions = %d %s", r.status, r.raw)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.(map[string]any)["id"].(string))
	}
	return ids
}

// An administrator lists a user's sessions with where they came from,
// ends one, then all, and lifts a lockout (SPEC §13), on both stores.
func TestSessionAdministration(t *testing.T) {
	forEachStore(t, func(t *testing.T, kind storeKind) {
		e := newEnv(t, kind)
		first := e.login(t, "bob@example.com", "203.0.113.7", "Phone/1.0")
		second := e.login(t, "bob@example.com", "198.51.100.2", "Laptop/2.0")
		e.login(t, "erin@example.com", "203.0.113.8", "Other/1.0") // not bob's

		r := e.call(t, "GET", "/v2/user/bob/sessions", "")
		ids := sessionIDs(t, r)
		// Oldest first; two logins in one millisecond may come either way.
		if len(ids) != 2 || !slices.Contains(ids, first.Session.ID) || !slices.Contains(ids, second.Session.ID) {
			t.Fatalf("bob's sessions = %v, want %s and %s", ids, first.Session.ID, second.Session.ID)
		}
		var s0 map[string]any
		for _, v := range r.body["sessions"].([]any) {
			if m := v.(map[string]any); m["id"] == first.Session.ID {
				s0 = m
			}
		}
		for k, want := range map[string]any{"clientIp": "203.0.113.7", "userAgent": "Phone/1.0", "kind": "api",
			"steppedUp": false, "method": ""} {
			if s0[k] != want {
				t.Errorf("session %s = %v, want %v (%s)", k, s0[k], want, r.raw)
			}
		}
		for _, k := range []string{"created", "lastUsed"} {
			if v, _ := s0[k].(string); len(v) < 20 {
				t.Errorf("%s = %v, want an RFC 3339 time", k, s0[k])
			}
		}

		// One ends; its tokens die; the listing has the other.
		if r := e.call(t, "DELETE", "/v2/user/bob/sessions/"+first.Session.ID, ""); r.status != 200 {
			t.Fatalf("end one = %d %s", r.status, r.raw)
		}
		if _, _, err := e.gw.Sessions.Authenticate(t.Context(), first.Token); err == nil {
			t.Fatal("an ended session's token still authenticates")
		}
		if ids := sessionIDs(t, e.call(t, "GET", "/v2/user/bob/sessions", "")); len(ids) != 1 || ids[0] != second.Session.ID {
			t.Fatalf("after ending one: %v", ids)
		}
		// Another user's session id through bob's route ends nothing.
		other := e.login(t, "erin@example.com", "203.0.113.8", "Other/1.0")
		if r := e.call(t, "DELETE", "/v2/user/bob/sessions/"+other.Session.ID, ""); r.status != 200 {
			t.Fatalf("end someone else's = %d %s", r.status, r.raw)
		}
		if _, _, err := e.gw.Sessions.Authenticate(t.Context(), other.Token); err != nil {
			t.Fatalf("erin's session was ended through bob's route: %v", err)
		}

		// A session that ends by itself leaves the listing, and its
		// index entry is cleaned as it is found.
		if err := e.gw.Sessions.Logout(t.Context(), second.Session); err != nil {
			t.Fatal(err)
		}
		if ids := sessionIDs(t, e.call(t, "GET", "/v2/user/bob/sessions", "")); len(ids) != 0 {
			t.Fatalf("after logout: %v", ids)
		}
		if members, _ := e.store.Members(t.Context(), authcore.Keys.UserSessions("1002")); len(members) != 0 {
			t.Errorf("bob's session index still holds %v", members)
		}

		// All at once.
		a, b := e.login(t, "bob@example.com", "203.0.113.7", "x"), e.login(t, "bob@example.com", "203.0.113.7", "y")
		if r := e.call(t, "DELETE", "/v2/user/bob/sessions", ""); r.status != 200 {
			t.Fatalf("end all = %d %s", r.status, r.raw)
		}
		for _, tok := range []string{a.Token, b.Token} {
			if _, _, err := e.gw.Sessions.Authenticate(t.Context(), tok); err == nil {
				t.Fatal("a token lived on after all sessions were ended")
			}
		}

		// Unlock.
		for range 5 {
			e.validate(t, "bob", map[string]any{"password": "Wrong-1"}).wantError(t, manageapi.InvalidUserCredentials)
		}
		e.validate(t, "bob", map[string]any{}).wantError(t, manageapi.AccountLocked)
		if r := e.call(t, "POST", "/v2/user/bob/unlock", ""); r.status != 200 {
			t.Fatalf("unlock = %d %s", r.status, r.raw)
		}
		e.validate(t, "bob", map[string]any{}).wantOK(t)
	})
}

// The session routes need their scope and a user that exists.
func TestSessionAdministrationRefusals(t *testing.T) {
	e := newEnv(t, memoryKind())
	for _, c := range []struct{ method, path string }{
		{"GET", "/v2/user/bob/sessions"}, {"DELETE", "/v2/user/bob/sessions/x"},
		{"DELETE", "/v2/user/bob/sessions"}, {"POST", "/v2/user/bob/unlock"},
	} {
		e.call(t, c.method, c.path, "", "Authorization", basic("reader", "reader-secret")).wantError(t, manageapi.ScopeNotGranted)
		e.call(t, c.method, c.path, "", "Authorization", "").wantError(t, manageapi.InvalidServiceCredentials)
	}
	if r := e.call(t, "GET", "/v2/user/nobody/sessions", ""); r.status != 404 {
		t.Errorf("sessions of an unknown user = %d %s, want 404", r.status, r.raw)
	}
}
