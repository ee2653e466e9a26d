package authcore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
	"github.com/authgate/authgate/authcore/store/memory"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

func benchServices(b *testing.B, store authcore.Store, key *authcore.Key) (*authcore.Services, string) {
	b.Helper()
	return newLoggedIn(b, store, key, nil)
}

// benchServicesT is benchServices for tests, with metrics.
func benchServicesT(t *testing.T, store authcore.Store, m authcore.Metrics) (*authcore.Services, string) {
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	return newLoggedIn(t, store, key, m)
}

// newLoggedIn returns a gateway over store with one user logged in, and
// an ACCESS token of that session.
func newLoggedIn(b testing.TB, store authcore.Store, key *authcore.Key, m authcore.Metrics) (*authcore.Services, string) {
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	users, _ := authcore.NewStaticUsers([]authcore.User{{ID: "1001", CredentialsType: "ROOT", Email: "a@example.com",
		Password: string(hash), Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001"}}}})
	gw, err := authcore.New(authcore.Options{Store: store, Users: users, Tokens: authcore.NewTokens("bench", key, time.Now),
		RateLimits: map[string]authcore.RateLimit{}, Metrics: m})
	if err != nil {
		b.Fatal(err)
	}
	res, err := gw.Sessions.Login(context.Background(), "a@example.com", testPassword)
	if err != nil {
		b.Fatal(err)
	}
	access, err := gw.Sessions.AccessToken(context.Background(), res.Session, authcore.IdentityRef{Type: "CONSUMER", ID: "2001"})
	if err != nil {
		b.Fatal(err)
	}
	return gw, access
}

func hmacKey(b *testing.B) *authcore.Key {
	k, err := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// benchAdmit measures the whole guard decision and header rewrite.
func benchAdmit(b *testing.B, gw *authcore.Services, token string) {
	policy := &authcore.GuardPolicy{Token: authcore.GuardAccess}
	auth := "Bearer " + token
	h := http.Header{}
	ctx := context.Background()
	headers := authcore.NewIdentityHeaders(authcore.DefaultHeaderPrefix)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tok, _ := httpapi.BearerToken(auth)
		d := gw.Guard.Decide(ctx, tok, policy)
		if !d.Admitted() {
			b.Fatal(d.Refusal)
		}
		headers.Set(h, &d)
	}
}

func BenchmarkGuardDecisionMemory(b *testing.B) {
	store := memory.New(nil)
	defer store.Close()
	gw, tok := benchServices(b, store, hmacKey(b))
	benchAdmit(b, gw, tok)
}

// BenchmarkGuardDecisionRedis is the decision on a redis:// store as the
// gateway opens it: the session served from memory under a fresh proof.
func BenchmarkGuardDecisionRedis(b *testing.B) {
	benchRedis(b, "")
}

// BenchmarkGuardDecisionRedisUncached is the same with the session cache
// off (?client_cache=false): one GETEX per decision.
func BenchmarkGuardDecisionRedisUncached(b *testing.B) {
	benchRedis(b, "?client_cache=false")
}

func benchRedis(b *testing.B, query string) {
	srv := storetest.StartRedis(b)
	opts, err := redisstore.Parse("redis://" + srv.Addr() + "/0" + query)
	if err != nil {
		b.Fatal(err)
	}
	store := redisstore.Open(opts, "bench:")
	defer store.Close()
	gw, tok := benchServices(b, store, hmacKey(b))
	benchAdmit(b, gw, tok)
}

// BenchmarkTokenVerify measures a token's first verification (signature
// and JSON: cold) and the later ones served by the verified-token cache.
func BenchmarkTokenVerify(b *testing.B) {
	for _, k := range benchKeys(b) {
		store := memory.New(nil)
		defer store.Close()
		gw, tok := benchServices(b, store, k)
		b.Run(k.Alg+"/cold", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := authcore.NewTokens("bench", k, time.Now).Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(k.Alg+"/cached", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := gw.Tokens.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkTokenIssue(b *testing.B) {
	for _, k := range benchKeys(b) {
		b.Run(k.Alg, func(b *testing.B) {
			store := memory.New(nil)
			defer store.Close()
			gw, _ := benchServices(b, store, k)
			res, _ := gw.Sessions.Login(context.Background(), "a@example.com", testPassword)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := gw.Sessions.IssueToken(res.Session, authcore.TokenAccess, res.Session.Identity); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchKeys(b *testing.B) []*authcore.Key {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	es, err := authcore.ParsePrivateKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		b.Fatal(err)
	}
	return []*authcore.Key{hmacKey(b), authcore.NewEphemeralKey(), es}
}

// BenchmarkLogin splits a login into the raw hash check and the whole
// login (argon2id with the production parameters), so that their ratio is
// the login overhead. login-mixed-file shows what a users file that also
// holds a bcrypt (cost 10) hash costs: every login verifies one hash of
// each parameter set, so about the sum of the two.
func BenchmarkLogin(b *testing.B) {
	hash, _ := authcore.HashPassword(testPassword)
	b.Run("hash-only", func(b *testing.B) {
		for b.Loop() {
			if !authcore.VerifyPassword(hash, testPassword) {
				b.Fatal("no match")
			}
		}
	})
	old, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.DefaultCost)
	for _, tc := range []struct {
		name  string
		users []authcore.User
	}{
		{"login", nil},
		{"login-mixed-file", []authcore.User{{ID: "1002", CredentialsType: "ROOT", Email: "b@example.com",
			Password: string(old), Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001"}}}}},
	} {
		b.Run(tc.name, func(b *testing.B) { benchLogin(b, hash, tc.users) })
	}
}

func benchLogin(b *testing.B, hash string, others []authcore.User) {
	users, _ := authcore.NewStaticUsers(append([]authcore.User{{ID: "1001", CredentialsType: "ROOT", Email: "a@example.com",
		Password: hash, Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001"}}}}, others...))
	store := memory.New(nil)
	defer store.Close()
	gw, _ := authcore.New(authcore.Options{Store: store, Users: users, Tokens: authcore.NewTokens("bench", hmacKey(b), time.Now),
		RateLimits: map[string]authcore.RateLimit{}})
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := gw.Sessions.Login(context.Background(), "a@example.com", testPassword); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOTPVerify(b *testing.B) {
	store := memory.New(nil)
	defer store.Close()
	key := hmacKey(b)
	codes := &authcore.CodeChallenges{Store: store, Key: key.Derive("codes"), ResendInterval: time.Nanosecond}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		scope := "{bench" + strings.Repeat("x", i%7) + "}:" + time.Now().String()
		issued, err := codes.Issue(ctx, scope, "+35699000001", "", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := codes.Verify(ctx, scope, issued.Code); err != nil {
			b.Fatal(err)
		}
	}
}
