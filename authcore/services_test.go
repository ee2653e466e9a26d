package authcore_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
	"github.com/authgate/authgate/authcore/httpapi"
	"github.com/authgate/authgate/authcore/store/memory"
)

// clock is the settable test clock the core's tests share.
type clock = authtest.Clock

const testPassword = "Correct-Horse-1"

func testUsers(t *testing.T) *authcore.StaticUsers {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	users, err := authcore.NewStaticUsers([]authcore.User{
		{ID: "1001", CredentialsType: "ROOT", Email: "Alice@Example.com", Password: string(hash),
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001", Name: "Alice"}, {Type: "CORPORATE", ID: "3001", Name: "Acme"}}},
		{ID: "1002", CredentialsType: "USER", Email: "bob@example.com", Password: string(hash),
			Identities: []authcore.Identity{{Type: "CORPORATE", ID: "3001", Name: "Acme"}}},
		{ID: "1003", CredentialsType: "ROOT", Email: "carol@example.com", Password: string(hash), PasswordExpires: &past,
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2003"}}},
		{ID: "1004", CredentialsType: "ROOT", Email: "dave@example.com", Password: string(hash), Disabled: true,
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2004"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// testHashParams make the hashes of these tests' gateways cheap: they are
// in the work of every login.
var testHashParams = authcore.HashParams{Scheme: authcore.SchemeArgon2id, Memory: 64, Time: 1, Threads: 1, KeyLen: 32}

// countingHasher counts password-hash verifications.
type countingHasher struct {
	mu sync.Mutex
	n  int
}

func (c *countingHasher) Verify(hash, pw string) bool {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return authcore.VerifyPassword(hash, pw)
}

func (c *countingHasher) Hash(pw string, p authcore.HashParams) (string, error) {
	return authcore.DefaultHasher.Hash(pw, p)
}

func (c *countingHasher) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func newTestServices(t *testing.T) (*authcore.Services, *clock, authcore.Store) {
	t.Helper()
	return newTestServicesWith(t, func(*authcore.Options) {})
}

// newTestServicesWith is newTestServices with the options adjusted by tune.
func newTestServicesWith(t *testing.T, tune func(*authcore.Options)) (*authcore.Services, *clock, authcore.Store) {
	t.Helper()
	clk := authtest.NewClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	store := memory.New(clk.Now)
	t.Cleanup(func() { store.Close() })
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	opts := authcore.Options{
		Store: store, Users: testUsers(t), Tokens: authcore.NewTokens("test", key, clk.Now),
		SessionIdle: 5 * time.Minute, SessionMax: time.Hour, Now: clk.Now, PasswordHash: testHashParams,
	}
	tune(&opts)
	gw, err := authcore.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return gw, clk, store
}

func TestLoginIsCaseInsensitiveOnEmail(t *testing.T) {
	gw, _, _ := newTestServices(t)
	res, err := gw.Sessions.Login(context.Background(), "ALICE@example.COM", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if res.Session.CredentialsID != "1001" || res.Session.Identity.ID != "2001" {
		t.Fatalf("session %+v", res.Session)
	}
}

func TestUnknownEmailWrongPasswordAndDisabledAreIndistinguishable(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ email, password string }{
		{"nobody@example.com", testPassword},
		{"alice@example.com", "wrong"},
		{"dave@example.com", testPassword},
	} {
		gw, _, _ := newTestServicesCounting(t)
		_, err := gw.gw.Sessions.Login(ctx, tc.email, tc.password)
		if !errors.Is(err, authcore.ErrInvalidCredentials) {
			t.Fatalf("%s: %v, want ErrInvalidCredentials", tc.email, err)
		}
		// One per parameter set: the users' bcrypt and the default.
		if gw.counter.count() != 2 {
			t.Fatalf("%s: %d hash checks, want exactly 2", tc.email, gw.counter.count())
		}
	}
}

type countingServices struct {
	gw      *authcore.Services
	counter *countingHasher
}

func newTestServicesCounting(t *testing.T) (countingServices, *clock, authcore.Store) {
	clk := authtest.NewClock(time.Now())
	store := memory.New(clk.Now)
	t.Cleanup(func() { store.Close() })
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	users := testUsers(t)
	cv := &countingHasher{}
	gw, err := authcore.New(authcore.Options{Store: store, Users: users,
		Tokens: authcore.NewTokens("test", key, clk.Now), Now: clk.Now, Hasher: cv, PasswordHash: testHashParams})
	if err != nil {
		t.Fatal(err)
	}
	return countingServices{gw, cv}, clk, store
}

func TestExpiredPasswordGivesPasswordUpdateToken(t *testing.T) {
	gw, _, _ := newTestServices(t)
	ctx := context.Background()
	_, err := gw.Sessions.Login(ctx, "carol@example.com", testPassword)
	var expired *authcore.PasswordExpiredError
	if !errors.As(err, &expired) {
		t.Fatalf("err = %v, want PasswordExpiredError", err)
	}
	c, s, err := gw.Sessions.AuthenticatePasswordUpdate(ctx, expired.Token)
	if err != nil {
		t.Fatal(err)
	}
	if c.TokenType != authcore.TokenPasswordUpdate || !s.PasswordUpdateOnly {
		t.Fatalf("token type %s, session password-update-only %v", c.TokenType, s.PasswordUpdateOnly)
	}
	_, rej := admit(gw, ctx, "Bearer "+expired.Token, &authcore.GuardPolicy{Token: authcore.GuardAny})
	if rej == nil || rej.Status != http.StatusUnauthorized {
		t.Fatalf("PASSWORD_UPDATE token on a guarded route: %+v, want 401", rej)
	}
}

func TestSessionSlidesWithUseAndDiesWhenIdle(t *testing.T) {
	gw, clk, _ := newTestServices(t)
	ctx := context.Background()
	res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	for i := 0; i < 5; i++ { // 20 minutes of activity, 4 minutes apart
		clk.Advance(4 * time.Minute)
		if _, _, err := gw.Sessions.Authenticate(ctx, res.Token); err != nil {
			t.Fatalf("after %d uses: %v", i+1, err)
		}
	}
	clk.Advance(5*time.Minute + time.Second)
	if _, _, err := gw.Sessions.Authenticate(ctx, res.Token); !errors.Is(err, authcore.ErrInvalidToken) {
		t.Fatalf("idle session: %v, want ErrInvalidToken", err)
	}
}

func TestSessionNeverOutlivesSessionMax(t *testing.T) {
	gw, clk, _ := newTestServices(t)
	ctx := context.Background()
	res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	for elapsed := time.Duration(0); elapsed < time.Hour-4*time.Minute; elapsed += 4 * time.Minute {
		clk.Advance(4 * time.Minute)
		if _, _, err := gw.Sessions.Authenticate(ctx, res.Token); err != nil {
			t.Fatalf("at %s: %v", elapsed, err)
		}
	}
	clk.Advance(4 * time.Minute) // past session_max (1h), though used 4 minutes ago
	if _, _, err := gw.Sessions.Authenticate(ctx, res.Token); !errors.Is(err, authcore.ErrInvalidToken) {
		t.Fatalf("past session_max: %v, want ErrInvalidToken", err)
	}
}

func TestLogoutKillsEveryTokenOfTheSession(t *testing.T) {
	gw, _, _ := newTestServices(t)
	ctx := context.Background()
	res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	access, err := gw.Sessions.AccessToken(ctx, res.Session, authcore.IdentityRef{Type: "CORPORATE", ID: "3001"})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Sessions.Logout(ctx, res.Session); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{res.Token, access} {
		if _, _, err := gw.Sessions.Authenticate(ctx, tok); !errors.Is(err, authcore.ErrInvalidToken) {
			t.Fatalf("after logout: %v", err)
		}
	}
}

func TestAccessTokenOnlyForTheUsersIdentities(t *testing.T) {
	gw, _, _ := newTestServices(t)
	ctx := context.Background()
	res, _ := gw.Sessions.Login(ctx, "bob@example.com", testPassword)
	if _, err := gw.Sessions.AccessToken(ctx, res.Session, authcore.IdentityRef{Type: "CONSUMER", ID: "2001"}); !errors.Is(err, authcore.ErrIdentityNotAllowed) {
		t.Fatalf("foreign identity: %v", err)
	}
}

func TestGuardDecisions(t *testing.T) {
	gw, clk, store := newTestServices(t)
	ctx := context.Background()
	alice, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	bob, _ := gw.Sessions.Login(ctx, "bob@example.com", testPassword)
	aliceConsumer, _ := gw.Sessions.AccessToken(ctx, alice.Session, authcore.IdentityRef{Type: "CONSUMER", ID: "2001"})
	bobCorporate, _ := gw.Sessions.AccessToken(ctx, bob.Session, authcore.IdentityRef{Type: "CORPORATE", ID: "3001"})

	// Alice steps up now; Bob does not.
	s := *alice.Session
	s.SteppedUp, s.StepUpMethod = clk.Now(), authcore.StepUpOTP
	if err := store.SaveSession(ctx, &s, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	// A second session of Alice's steps up with a passkey.
	alicePK, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	pk := *alicePK.Session
	pk.SteppedUp, pk.StepUpMethod = clk.Now(), authcore.StepUpPasskey
	if err := store.SaveSession(ctx, &pk, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	passkeyOnly := []string{authcore.StepUpPasskey}

	cases := []struct {
		name      string
		auth      string
		policy    authcore.GuardPolicy
		status    int
		code      string
		challenge string
	}{
		{"no header", "", authcore.GuardPolicy{Token: "access"}, 401, "", `Bearer realm="authgate"`},
		{"not bearer", "Basic abc", authcore.GuardPolicy{Token: "access"}, 401, "", `Bearer realm="authgate"`},
		{"garbage token", "Bearer abc", authcore.GuardPolicy{Token: "access"}, 401, "", `Bearer realm="authgate", error="invalid_token"`},
		{"auth token where access required", "Bearer " + alice.Token, authcore.GuardPolicy{Token: "access"}, 403, "ACCESS_TOKEN_REQUIRED", ""},
		{"auth token where any", "bearer " + alice.Token, authcore.GuardPolicy{Token: "any"}, 200, "", ""},
		{"access token", "Bearer " + aliceConsumer, authcore.GuardPolicy{Token: "access"}, 200, "", ""},
		{"identity type matches", "Bearer " + aliceConsumer, authcore.GuardPolicy{Token: "access", IdentityType: "CONSUMER"}, 200, "", ""},
		{"identity type differs", "Bearer " + bobCorporate, authcore.GuardPolicy{Token: "access", IdentityType: "CONSUMER"}, 403, "INSUFFICIENT_PERMISSIONS", ""},
		{"credentials type differs", "Bearer " + bobCorporate, authcore.GuardPolicy{Token: "access", CredentialsType: "ROOT"}, 403, "INSUFFICIENT_PERMISSIONS", ""},
		{"not stepped up", "Bearer " + bobCorporate, authcore.GuardPolicy{Token: "access", StepUp: true}, 403, "STEP_UP_REQUIRED",
			`Bearer error="insufficient_user_authentication", error_description="a stepped-up session is required"`},
		{"stepped up (token issued before step-up)", "Bearer " + aliceConsumer, authcore.GuardPolicy{Token: "access", StepUp: true}, 200, "", ""},
		{"stepped up within max_age", "Bearer " + aliceConsumer, authcore.GuardPolicy{Token: "access", StepUp: true, MaxAge: 3 * time.Minute}, 200, "", ""},
		{"step-up older than max_age", "Bearer " + aliceConsumer, authcore.GuardPolicy{Token: "access", StepUp: true, MaxAge: time.Minute}, 403, "STEP_UP_REQUIRED",
			`Bearer error="insufficient_user_authentication", error_description="a step-up within the last 1m0s is required", max_age=60`},
		{"otp step-up where only a passkey counts", "Bearer " + aliceConsumer, authcore.GuardPolicy{Token: "access", StepUp: true, MaxAge: 5 * time.Minute, StepUpMethods: passkeyOnly}, 403, "STEP_UP_REQUIRED",
			`Bearer error="insufficient_user_authentication", error_description="a step-up within the last 5m0s is required", max_age=300, acr_values="phr"`},
		{"not stepped up where only a passkey counts", "Bearer " + bobCorporate, authcore.GuardPolicy{Token: "access", StepUp: true, StepUpMethods: passkeyOnly}, 403, "STEP_UP_REQUIRED",
			`Bearer error="insufficient_user_authentication", error_description="a stepped-up session is required", acr_values="phr"`},
		{"passkey step-up where only a passkey counts", "Bearer " + alicePK.Token, authcore.GuardPolicy{Token: "any", StepUp: true, MaxAge: 5 * time.Minute, StepUpMethods: passkeyOnly}, 200, "", ""},
		{"passkey step-up older than max_age", "Bearer " + alicePK.Token, authcore.GuardPolicy{Token: "any", StepUp: true, MaxAge: time.Minute, StepUpMethods: passkeyOnly}, 403, "STEP_UP_REQUIRED",
			`Bearer error="insufficient_user_authentication", error_description="a step-up within the last 1m0s is required", max_age=60, acr_values="phr"`},
		{"otp step-up among the methods", "Bearer " + aliceConsumer, authcore.GuardPolicy{Token: "access", StepUp: true, StepUpMethods: []string{authcore.StepUpOTP, authcore.StepUpPasskey}}, 200, "", ""},
		{"passkey step-up where only push counts", "Bearer " + alicePK.Token, authcore.GuardPolicy{Token: "any", StepUp: true, StepUpMethods: []string{authcore.StepUpPush}}, 403, "STEP_UP_REQUIRED",
			`Bearer error="insufficient_user_authentication", error_description="a stepped-up session is required"`},
		{"passkey step-up where push or a code counts", "Bearer " + alicePK.Token, authcore.GuardPolicy{Token: "any", StepUp: true, StepUpMethods: []string{authcore.StepUpPush, authcore.StepUpOTP}}, 403, "STEP_UP_REQUIRED",
			`Bearer error="insufficient_user_authentication", error_description="a stepped-up session is required"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			adm, rej := admit(gw, ctx, tc.auth, &tc.policy)
			if tc.status == 200 {
				if rej != nil {
					t.Fatalf("rejected: %+v", rej)
				}
				if adm.Claims.Subject == "" {
					t.Fatal("admission without a subject")
				}
				return
			}
			if rej == nil {
				t.Fatalf("admitted, want %d", tc.status)
			}
			if rej.Status != tc.status || rej.ErrorCode != tc.code || rej.Challenge != tc.challenge {
				t.Fatalf("got %d %q %q, want %d %q %q", rej.Status, rej.ErrorCode, rej.Challenge, tc.status, tc.code, tc.challenge)
			}
		})
	}
}

func TestIdentityHeadersReplaceClientLookalikes(t *testing.T) {
	gw, _, _ := newTestServices(t)
	ctx := context.Background()
	alice, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	adm, rej := admit(gw, ctx, "Bearer "+alice.Token, &authcore.GuardPolicy{Token: "any"})
	if rej != nil {
		t.Fatal(rej)
	}
	h := http.Header{}
	h["X-Authgate-Credentials-Id"] = []string{"9999"}
	h["x-authgate-identity-id"] = []string{"spoof"}
	h["X_Authgate_Credentials_Type"] = []string{"ROOT"}
	h["X-AUTHGATE-Admin"] = []string{"true"}
	h["X-Other"] = []string{"kept"}
	h["Authorization"] = []string{"Bearer " + alice.Token}
	authcore.NewIdentityHeaders("X-Authgate-").Set(h, adm)
	want := map[string]string{
		"X-Authgate-Credentials-Id": "1001", "X-Authgate-Credentials-Type": "ROOT",
		"X-Authgate-Identity-Id": "2001", "X-Authgate-Identity-Type": "CONSUMER",
		"X-Authgate-Stepped-Up": "false", "X-Other": "kept", "Authorization": "Bearer " + alice.Token,
	}
	for k, v := range want {
		if got := h[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"x-authgate-identity-id", "X_Authgate_Credentials_Type", "X-AUTHGATE-Admin"} {
		if _, ok := h[k]; ok {
			t.Errorf("client header %s survived", k)
		}
	}
	if len(h) != len(want)+1 { // + Auth-Time
		t.Errorf("headers %v", h)
	}
}

// A store error that is no outage keeps its kind: a session record that
// does not decode is an internal error (500), not ErrUnavailable (503).
func TestUndecodableSessionIsAnInternalErrorNotAnOutage(t *testing.T) {
	gw, _, store := newTestServices(t)
	ctx := context.Background()
	res, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Set(ctx, authcore.Keys.Session("", res.Session.ID), []byte("garbage"), time.Minute); err != nil {
		t.Fatal(err)
	}
	_, _, err = gw.Sessions.Authenticate(ctx, res.Token)
	if err == nil || errors.Is(err, authcore.ErrUnavailable) || errors.Is(err, authcore.ErrInvalidToken) {
		t.Fatalf("Authenticate over an undecodable session: %v, want an internal error", err)
	}
	_, rej := admit(gw, ctx, "Bearer "+res.Token, &authcore.GuardPolicy{Token: authcore.GuardAuth})
	if rej == nil || rej.Status != http.StatusInternalServerError {
		t.Fatalf("guard over an undecodable session: %+v, want 500", rej)
	}
}

// rejection is a guard refusal as the guard handler answers it.
type rejection struct {
	Status    int
	ErrorCode string
	Challenge string
	Cause     error
}

// admit decides a request as the guard handler does: the bearer token of
// authorization, the guard's decision, and the answer of a refusal.
func admit(gw *authcore.Services, ctx context.Context, authorization string, p *authcore.GuardPolicy) (*authcore.Decision, *rejection) {
	token, _ := httpapi.BearerToken(authorization)
	d := gw.Guard.Decide(ctx, token, p)
	if d.Admitted() {
		return &d, nil
	}
	rec := httptest.NewRecorder()
	httpapi.WriteGuardRefusal(rec, &d)
	var body struct {
		ErrorCode string `json:"errorCode"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	return nil, &rejection{Status: rec.Code, ErrorCode: body.ErrorCode,
		Challenge: rec.Header().Get("WWW-Authenticate"), Cause: d.Cause}
}
