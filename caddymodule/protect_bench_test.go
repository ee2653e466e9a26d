package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/store/memory"
)

// BenchmarkProtectServeHTTP measures the guard as Caddy runs it: decision,
// header rewrite and placeholders, with a replacer in the request context.
func BenchmarkProtectServeHTTP(b *testing.B) {
	store := memory.New(nil)
	defer store.Close()
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw-Bench-1"), bcrypt.MinCost)
	users, _ := authcore.NewStaticUsers([]authcore.User{{ID: "1001", CredentialsType: "ROOT", Email: "a@example.com",
		Password: string(hash), Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001"}}}})
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	gw, _ := authcore.New(authcore.Options{Store: store, Users: users, Tokens: authcore.NewTokens("b", key, time.Now),
		RateLimits: map[string]authcore.RateLimit{}})
	res, _ := gw.Sessions.Login(context.Background(), "a@example.com", "pw-Bench-1")
	tok, _ := gw.Sessions.AccessToken(context.Background(), res.Session, authcore.IdentityRef{Type: "CONSUMER", ID: "2001"})

	p := &Guard{}
	p.app = &App{services: gw}
	p.policy = authcore.GuardPolicy{Token: authcore.GuardAccess}
	p.headers = authcore.NewIdentityHeaders(authcore.DefaultHeaderPrefix)
	p.logger = caddy.Log()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/api/x", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		repl := caddy.NewReplacer()
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
		if err := p.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRequestBaseline is the same request set-up without the guard,
// to subtract from BenchmarkProtectServeHTTP.
func BenchmarkRequestBaseline(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", "/api/x", nil)
		r.Header.Set("Authorization", "Bearer x")
		repl := caddy.NewReplacer()
		_ = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
	}
}
