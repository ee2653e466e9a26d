package authcore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
)

const (
	testRPID   = "bank.example"
	testOrigin = "https://bank.example"
)

// newPasskeyServices are services with passkeys on store (nil: a memory
// store of their own) that log to logger (nil: nowhere).
func newPasskeyServices(t *testing.T, store authcore.Store, logger *zap.Logger) (*authcore.Services, *clock, authcore.Store) {
	gw, clk, own := newTestServicesWith(t, func(o *authcore.Options) {
		o.Passkeys = &authcore.PasskeyConfig{RPID: testRPID, Origins: []string{testOrigin}}
		if store != nil {
			o.Store = store
		}
		o.Logger = logger
	})
	if store == nil {
		store = own
	}
	return gw, clk, store
}

// forEachPasskeyStore runs fn on a memory store and on Redis.
func forEachPasskeyStore(t *testing.T, fn func(t *testing.T, store authcore.Store)) {
	forEachStore(t, func(t *testing.T, newStores nodeStores, _ bool, _ *clock) {
		store, _ := newStores()
		fn(t, store)
	})
}

// steppedUpLogin logs alice in and steps her session up by a code.
func steppedUpLogin(t *testing.T, gw *authcore.Services, clk *clock, store authcore.Store) *authcore.Session {
	t.Helper()
	ctx := context.Background()
	res, err := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	s := res.Session
	s.SteppedUp, s.StepUpMethod = clk.Now(), authcore.StepUpOTP
	if err := store.SaveSession(ctx, s, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	return s
}

// enrol enrols k for the session's user.
func enrol(t *testing.T, gw *authcore.Services, s *authcore.Session, k *authtest.SoftKey) {
	t.Helper()
	ctx := context.Background()
	options, err := gw.Passkeys.BeginEnrol(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Passkeys.FinishEnrol(ctx, s, k.Attest(t, options)); err != nil {
		t.Fatalf("enrol: %v", err)
	}
}

func TestPasskeyEnrolThenStepUp(t *testing.T) {
	forEachPasskeyStore(t, testPasskeyEnrolThenStepUp)
}

func testPasskeyEnrolThenStepUp(t *testing.T, store authcore.Store) {
	gw, clk, store := newPasskeyServices(t, store, nil)
	ctx := context.Background()
	s := steppedUpLogin(t, gw, clk, store)
	k := authtest.NewSoftKey(t, testRPID, testOrigin)
	enrol(t, gw, s, k)
	if ids, err := gw.Passkeys.List(ctx, s.CredentialsID); err != nil || len(ids) != 1 || ids[0] != authcore.PasskeyID(k.ID) {
		t.Fatalf("passkeys %v %v, want [%s]", ids, err, authcore.PasskeyID(k.ID))
	}

	// A new session of alice's steps up with the passkey.
	res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	options, err := gw.Passkeys.BeginStepUp(ctx, res.Session)
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Passkeys.FinishStepUp(ctx, res.Session, k.Assert(t, options, s.CredentialsID)); err != nil {
		t.Fatalf("step-up: %v", err)
	}
	_, stored, err := gw.Sessions.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if stored.StepUpMethod != authcore.StepUpPasskey || !stored.IsSteppedUp(clk.Now(), time.Minute) {
		t.Fatalf("session after the passkey: %+v", stored)
	}
	if _, rej := admit(gw, ctx, "Bearer "+res.Token, &authcore.GuardPolicy{Token: authcore.GuardAny, StepUp: true,
		MaxAge: 5 * time.Minute, StepUpMethods: []string{authcore.StepUpPasskey}}); rej != nil {
		t.Fatalf("passkey route: %+v", rej)
	}

	// Removed, it is gone, and a step-up is no longer offered.
	if err := gw.Passkeys.Delete(ctx, s, authcore.PasskeyID(k.ID)); err != nil {
		t.Fatal(err)
	}
	if err := gw.Passkeys.Delete(ctx, s, authcore.PasskeyID(k.ID)); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	_, err = gw.Passkeys.BeginStepUp(ctx, res.Session)
	wantCode(t, err, authcore.CodeStateInvalid)
}

func TestPasskeyEnrolNeedsAStepUp(t *testing.T) {
	gw, _, _ := newPasskeyServices(t, nil, nil)
	ctx := context.Background()
	res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	if _, err := gw.Passkeys.BeginEnrol(ctx, res.Session); !errors.Is(err, authcore.ErrStepUpRequired) {
		t.Fatalf("enrol without a step-up: %v", err)
	}
	if err := gw.Passkeys.Delete(ctx, res.Session, "x"); !errors.Is(err, authcore.ErrStepUpRequired) {
		t.Fatalf("delete without a step-up: %v", err)
	}
}

func TestPasskeyRefusals(t *testing.T) {
	ctx := context.Background()
	cases := map[string]func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *authtest.SoftKey) error{
		"replayed assertion": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *authtest.SoftKey) error {
			options, _ := gw.Passkeys.BeginStepUp(ctx, s)
			body := k.Assert(t, options, s.CredentialsID)
			if err := gw.Passkeys.FinishStepUp(ctx, s, body); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return gw.Passkeys.FinishStepUp(ctx, s, body)
		},
		"wrong origin": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *authtest.SoftKey) error {
			options, _ := gw.Passkeys.BeginStepUp(ctx, s)
			k.Origin = "https://bank.example.evil"
			return gw.Passkeys.FinishStepUp(ctx, s, k.Assert(t, options, s.CredentialsID))
		},
		"wrong RP ID": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *authtest.SoftKey) error {
			options, _ := gw.Passkeys.BeginStepUp(ctx, s)
			k.RPID = "evil.example"
			return gw.Passkeys.FinishStepUp(ctx, s, k.Assert(t, options, s.CredentialsID))
		},
		"cloned credential": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *authtest.SoftKey) error {
			options, _ := gw.Passkeys.BeginStepUp(ctx, s)
			k.Count = 10
			if err := gw.Passkeys.FinishStepUp(ctx, s, k.Assert(t, options, s.CredentialsID)); err != nil {
				t.Fatalf("original: %v", err)
			}
			k.Count = 3 // the clone lags behind
			options, _ = gw.Passkeys.BeginStepUp(ctx, s)
			return gw.Passkeys.FinishStepUp(ctx, s, k.Assert(t, options, s.CredentialsID))
		},
		"challenge of another session": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *authtest.SoftKey) error {
			other, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
			options, _ := gw.Passkeys.BeginStepUp(ctx, other.Session)
			return gw.Passkeys.FinishStepUp(ctx, s, k.Assert(t, options, s.CredentialsID))
		},
		"user verification missing": func(t *testing.T, gw *authcore.Services, s *authcore.Session, k *authtest.SoftKey) error {
			options, _ := gw.Passkeys.BeginStepUp(ctx, s)
			k.Flags = authtest.FlagUP
			return gw.Passkeys.FinishStepUp(ctx, s, k.Assert(t, options, s.CredentialsID))
		},
	}
	forEachPasskeyStore(t, func(t *testing.T, store authcore.Store) {
		for name, run := range cases {
			t.Run(name, func(t *testing.T) {
				core, logs := observer.New(zap.InfoLevel)
				gw, clk, store := newPasskeyServices(t, store, zap.New(core))
				enrolled := steppedUpLogin(t, gw, clk, store)
				k := authtest.NewSoftKey(t, testRPID, testOrigin)
				enrol(t, gw, enrolled, k)
				res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
				err := run(t, gw, res.Session, k)
				var ce *authcore.ChallengeError
				if !errors.As(err, &ce) || (ce.Code != authcore.CodeVerificationCodeInvalid && ce.Code != authcore.CodeStateInvalid) {
					t.Fatalf("err = %v, want a refusal", err)
				}
				stateless := name == "replayed assertion" || name == "challenge of another session"
				if stateless && ce.Code != authcore.CodeStateInvalid || !stateless && ce.Code != authcore.CodeVerificationCodeInvalid {
					t.Fatalf("code %s", ce.Code)
				}
				if _, stored, _ := gw.Sessions.Authenticate(ctx, res.Token); name != "replayed assertion" && name != "cloned credential" && !stored.SteppedUp.IsZero() {
					t.Fatalf("refused, yet the session stepped up: %+v", stored)
				}
				if clone := logs.FilterMessageSnippet("cloned authenticator").Len(); (name == "cloned credential") != (clone == 1) {
					t.Fatalf("%d clone warnings logged", clone)
				}
			})
		}
	})
}
