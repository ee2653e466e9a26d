package authcore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
	"github.com/authgate/authgate/authcore/store/memory"
	redisstore "github.com/authgate/authgate/authcore/store/redis"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// recordingSender records instead of delivering.
type recordingSender = authtest.RecordingSender

// stepUpEnv is a gateway (or two, sharing a store) with a settable clock.
// On Redis, TTLs run on real time, so wait both sleeps and advances the
// clock; on memory it only advances the clock.
type stepUpEnv struct {
	gw, gw2  *authcore.Services
	clk      *clock
	otp      *recordingSender
	push     *recordingSender
	realTime bool
	secret   []byte
}

const (
	testCodeTTL = 600 * time.Millisecond
	testResend  = 200 * time.Millisecond
)

func (e *stepUpEnv) wait(d time.Duration) {
	e.clk.Advance(d)
	if e.realTime {
		time.Sleep(d)
	}
}

// nodeStores returns the stores of two gateway nodes that share state:
// one memory store, or two clients of one Redis.
type nodeStores func() (authcore.Store, authcore.Store)

// forEachStore runs fn once per store kind.
func forEachStore(t *testing.T, fn func(t *testing.T, newStores nodeStores, realTime bool, clk *clock)) {
	t.Run("memory", func(t *testing.T) {
		clk := authtest.NewClock(time.Now())
		fn(t, func() (authcore.Store, authcore.Store) {
			s := memory.New(clk.Now)
			t.Cleanup(func() { s.Close() })
			return s, s
		}, false, clk)
	})
	t.Run("redis", func(t *testing.T) {
		srv := storetest.StartRedis(t)
		prefix := fmt.Sprintf("t%d:", time.Now().UnixNano())
		clk := authtest.NewClock(time.Now())
		client := func() authcore.Store {
			opts, err := redisstore.ParseURL("redis://" + srv.Addr() + "/0")
			if err != nil {
				t.Fatal(err)
			}
			s := redisstore.New(goredis.NewUniversalClient(opts), prefix)
			t.Cleanup(func() { s.Close() })
			return s
		}
		fn(t, func() (authcore.Store, authcore.Store) { return client(), client() }, true, clk)
	})
}

func stepUpUsers(t *testing.T) *authcore.StaticUsers {
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	users, err := authcore.NewStaticUsers([]authcore.User{
		{ID: "1001", CredentialsType: "ROOT", Email: "alice@example.com", Password: string(hash), TextNumber: "+35699000001",
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001"}}, Factors: authcore.Factors{OTP: []string{"SMS"}, Push: []string{"AUTHY"}}},
		{ID: "1002", CredentialsType: "USER", Email: "bob@example.com", Password: string(hash), Phone: "+35699000002",
			Identities: []authcore.Identity{{Type: "CORPORATE", ID: "3001"}}},
		{ID: "1003", CredentialsType: "USER", Email: "dave@example.com", Password: string(hash),
			Identities: []authcore.Identity{{Type: "CORPORATE", ID: "3001"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return users
}

func newStepUpEnv(t *testing.T, newStores nodeStores, realTime bool, clk *clock, sandbox bool) *stepUpEnv {
	t.Helper()
	e := &stepUpEnv{clk: clk, otp: &recordingSender{}, push: &recordingSender{}, realTime: realTime, secret: []byte("push-secret")}
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	users := stepUpUsers(t)
	mk := func(store authcore.Store) *authcore.Services {
		gw, err := authcore.New(authcore.Options{
			Store: store, Users: users, Tokens: authcore.NewTokens("test", key, clk.Now), Now: clk.Now,
			Sandbox: sandbox, OTPSender: e.otp, PushSender: e.push, PushSecret: e.secret,
			CodeKey: key.Derive("codes"), CodeTTL: testCodeTTL, ResendInterval: testResend, PasswordHash: testHashParams,
		})
		if err != nil {
			t.Fatal(err)
		}
		return gw
	}
	s1, s2 := newStores()
	e.gw, e.gw2 = mk(s1), mk(s2)
	return e
}

func (e *stepUpEnv) login(t *testing.T, email string) *authcore.Session {
	t.Helper()
	res, err := e.gw.Sessions.Login(context.Background(), email, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	return res.Session
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ce *authcore.ChallengeError
	if code == "" {
		if err != nil {
			t.Fatalf("err = %v, want success", err)
		}
		return
	}
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("err = %v, want %s", err, code)
	}
}

// reload reads the session as the guard would.
func reload(t *testing.T, gw *authcore.Services, s *authcore.Session) *authcore.Session {
	t.Helper()
	tok, _ := gw.Sessions.IssueToken(s, authcore.TokenAuth, s.Identity)
	_, fresh, err := gw.Sessions.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	return fresh
}

func TestOTPStepUpStateMachine(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore nodeStores, realTime bool, clk *clock) {
		ctx := context.Background()

		t.Run("right code steps the session up, once", func(t *testing.T) {
			e := newStepUpEnv(t, newStore, realTime, clk, false)
			s := e.login(t, "alice@example.com")
			wantCode(t, e.gw.StepUp.VerifyOTP(ctx, s, "SMS", "123456"), authcore.CodeStateInvalid) // nothing issued
			wantCode(t, e.gw.StepUp.IssueOTP(ctx, s, "SMS"), "")
			msg := e.otp.Last(t)
			if msg.To != "+35699000001" || len(msg.Code) != 6 || msg.Channel != "SMS" || msg.Purpose != "stepup" {
				t.Fatalf("sent %+v", msg)
			}
			wantCode(t, e.gw2.StepUp.VerifyOTP(ctx, s, "SMS", msg.Code), "") // on the other node
			if got := reload(t, e.gw, s); !got.IsSteppedUp(clk.Now(), 0) || got.StepUpMethod != "otp" {
				t.Fatalf("session not stepped up: %+v", got)
			}
			wantCode(t, e.gw.StepUp.VerifyOTP(ctx, s, "SMS", msg.Code), authcore.CodeAlreadyVerified)
		})

		t.Run("five attempts, then STATE_INVALID even for the right code", func(t *testing.T) {
			e := newStepUpEnv(t, newStore, realTime, clk, false)
			s := e.login(t, "alice@example.com")
			wantCode(t, e.gw.StepUp.IssueOTP(ctx, s, "SMS"), "")
			code := e.otp.Last(t).Code
			wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
			for i, want := range []string{
				authcore.CodeVerificationCodeInvalid, authcore.CodeVerificationCodeInvalid, authcore.CodeVerificationCodeInvalid,
				authcore.CodeOneChallengeLimitLeft, authcore.CodeChallengeLimitExceeded,
				authcore.CodeStateInvalid, authcore.CodeStateInvalid,
			} {
				t.Logf("attempt %d", i+1)
				wantCode(t, e.gw.StepUp.VerifyOTP(ctx, s, "SMS", wrong), want)
			}
			wantCode(t, e.gw.StepUp.VerifyOTP(ctx, s, "SMS", code), authcore.CodeStateInvalid)
			if reload(t, e.gw, s).IsSteppedUp(clk.Now(), 0) {
				t.Fatal("stepped up after the attempts ran out")
			}
		})

		t.Run("code expires", func(t *testing.T) {
			e := newStepUpEnv(t, newStore, realTime, clk, false)
			s := e.login(t, "alice@example.com")
			wantCode(t, e.gw.StepUp.IssueOTP(ctx, s, "SMS"), "")
			code := e.otp.Last(t).Code
			e.wait(testCodeTTL + 50*time.Millisecond)
			wantCode(t, e.gw.StepUp.VerifyOTP(ctx, s, "SMS", code), authcore.CodeVerificationCodeExpired)
		})

		t.Run("resend: not within the interval, once per step-up", func(t *testing.T) {
			var (
				e     *stepUpEnv
				s     *authcore.Session
				first string
			)
			// On Redis the interval runs on real time: a re-issue that
			// answered testResend or more after the first was sent may
			// rightly be allowed on a stalled machine, and the round
			// starts over on a new login (for at most 30s).
			for deadline := time.Now().Add(30 * time.Second); ; {
				e = newStepUpEnv(t, newStore, realTime, clk, false)
				s = e.login(t, "alice@example.com")
				sent := time.Now()
				wantCode(t, e.gw.StepUp.IssueOTP(ctx, s, "SMS"), "")
				first = e.otp.Last(t).Code
				err := e.gw2.StepUp.IssueOTP(ctx, s, "SMS")
				if realTime && err == nil && time.Since(sent) >= testResend && time.Now().Before(deadline) {
					t.Logf("the re-issue answered %v after the first was sent: stalled, again", time.Since(sent).Round(time.Millisecond))
					continue
				}
				wantCode(t, err, authcore.CodeRetryIn15Sec)
				break
			}
			e.wait(testResend + 50*time.Millisecond)
			wantCode(t, e.gw.StepUp.IssueOTP(ctx, s, "SMS"), "") // the one resend
			second := e.otp.Last(t).Code
			e.wait(testResend + 50*time.Millisecond)
			wantCode(t, e.gw.StepUp.IssueOTP(ctx, s, "SMS"), authcore.CodeChallengeLimitExceeded)
			if e.otp.Count() != 2 {
				t.Fatalf("%d codes sent, want 2", e.otp.Count())
			}
			// Only the latest code counts.
			if first != second {
				wantCode(t, e.gw.StepUp.VerifyOTP(ctx, s, "SMS", first), authcore.CodeVerificationCodeInvalid)
			}
			wantCode(t, e.gw.StepUp.VerifyOTP(ctx, s, "SMS", second), "")
			// A success starts a new round.
			e.wait(testResend + 50*time.Millisecond)
			wantCode(t, e.gw.StepUp.IssueOTP(ctx, s, "SMS"), "")
		})

		t.Run("channel not registered", func(t *testing.T) {
			e := newStepUpEnv(t, newStore, realTime, clk, false)
			s := e.login(t, "bob@example.com")
			wantCode(t, e.gw.StepUp.IssueOTP(ctx, s, "SMS"), authcore.CodeChannelNotRegistered)
			wantCode(t, e.gw.StepUp.VerifyOTP(ctx, s, "SMS", "123456"), authcore.CodeChannelNotRegistered)
			_, err := e.gw.StepUp.IssuePush(ctx, s, "AUTHY")
			wantCode(t, err, authcore.CodeChannelNotRegistered)
		})

		t.Run("sandbox: code 123456, nothing sent", func(t *testing.T) {
			e := newStepUpEnv(t, newStore, realTime, clk, true)
			s := e.login(t, "alice@example.com")
			wantCode(t, e.gw.StepUp.IssueOTP(ctx, s, "SMS"), "")
			wantCode(t, e.gw.StepUp.VerifyOTP(ctx, s, "SMS", "123456"), "")
			if e.otp.Count() != 0 {
				t.Fatal("sandbox sent a message")
			}
		})
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestParallelWrongCodesAcrossTwoNodesGetFiveTries: 50 concurrent wrong
// verifications against one challenge, spread over two gateways on one
// store, are answered as at most five tries.
func TestParallelWrongCodesAcrossTwoNodesGetFiveTries(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore nodeStores, realTime bool, clk *clock) {
		ctx := context.Background()
		e := newStepUpEnv(t, newStore, realTime, clk, false)
		s := e.login(t, "alice@example.com")
		wantCode(t, e.gw.StepUp.IssueOTP(ctx, s, "SMS"), "")
		wrong := fmt.Sprintf("%06d", (atoi(e.otp.Last(t).Code)+1)%1000000)
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			gw := e.gw
			if i%2 == 1 {
				gw = e.gw2
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var ce *authcore.ChallengeError
				err := gw.StepUp.VerifyOTP(ctx, s, "SMS", wrong)
				if !errors.As(err, &ce) {
					t.Errorf("err = %v", err)
					return
				}
				mu.Lock()
				counts[ce.Code]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		tries := counts[authcore.CodeVerificationCodeInvalid] + counts[authcore.CodeOneChallengeLimitLeft] + counts[authcore.CodeChallengeLimitExceeded]
		if tries != 5 || counts[authcore.CodeStateInvalid] != 45 || counts[authcore.CodeOneChallengeLimitLeft] != 1 || counts[authcore.CodeChallengeLimitExceeded] != 1 {
			t.Fatalf("answers %v: want exactly 5 tries (3 invalid, 1 one-left, 1 limit) and 45 STATE_INVALID", counts)
		}
	})
}

func TestPushStepUp(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore nodeStores, realTime bool, clk *clock) {
		ctx := context.Background()

		t.Run("signed resolve VERIFIED steps up; resolve is idempotent", func(t *testing.T) {
			e := newStepUpEnv(t, newStore, realTime, clk, false)
			s := e.login(t, "alice@example.com")
			id, err := e.gw.StepUp.IssuePush(ctx, s, "AUTHY")
			wantCode(t, err, "")
			msg := e.push.Last(t)
			if msg.ChallengeID != id || msg.To != "1001" || msg.Channel != "AUTHY" || msg.Code != "" {
				t.Fatalf("push sent %+v", msg)
			}
			if st, _ := e.gw.StepUp.PushStatus(ctx, s, "AUTHY", id); st != authcore.PushPending {
				t.Fatalf("status %s", st)
			}
			wantCode(t, e.gw2.StepUp.ResolvePush(ctx, "AUTHY", id, authcore.PushVerified), "")
			wantCode(t, e.gw.StepUp.ResolvePush(ctx, "AUTHY", id, authcore.PushVerified), "") // idempotent
			wantCode(t, e.gw.StepUp.ResolvePush(ctx, "AUTHY", id, authcore.PushDeclined), authcore.CodeStateInvalid)
			if st, _ := e.gw.StepUp.PushStatus(ctx, s, "AUTHY", id); st != authcore.PushVerified {
				t.Fatalf("status %s", st)
			}
			if got := reload(t, e.gw, s); got.StepUpMethod != "push" || got.SteppedUp.IsZero() {
				t.Fatalf("session %+v", got)
			}
			_, err = e.gw.StepUp.IssuePush(ctx, reload(t, e.gw, s), "AUTHY")
			wantCode(t, err, authcore.CodeStateInvalid) // already resolved a push
		})

		t.Run("declined, expired, foreign and limits", func(t *testing.T) {
			e := newStepUpEnv(t, newStore, realTime, clk, false)
			s := e.login(t, "alice@example.com")
			other := e.login(t, "alice@example.com")
			id, _ := e.gw.StepUp.IssuePush(ctx, s, "AUTHY")
			if _, err := e.gw.StepUp.PushStatus(ctx, other, "AUTHY", id); !errors.Is(err, authcore.ErrNotFound) {
				t.Fatalf("another session sees the push: %v", err)
			}
			if _, err := e.gw.StepUp.PushStatus(ctx, s, "BIOMETRIC", id); !errors.Is(err, authcore.ErrNotFound) {
				t.Fatalf("wrong channel: %v", err)
			}
			if err := e.gw.StepUp.ResolvePush(ctx, "AUTHY", "999", authcore.PushVerified); !errors.Is(err, authcore.ErrNotFound) {
				t.Fatalf("unknown id: %v", err)
			}
			wantCode(t, e.gw.StepUp.ResolvePush(ctx, "AUTHY", id, authcore.PushDeclined), "")
			if reload(t, e.gw, s).IsSteppedUp(clk.Now(), 0) {
				t.Fatal("declined push stepped up")
			}
			id2, err := e.gw.StepUp.IssuePush(ctx, s, "AUTHY")
			wantCode(t, err, "")
			e.wait(testCodeTTL + 50*time.Millisecond)
			if st, _ := e.gw.StepUp.PushStatus(ctx, s, "AUTHY", id2); st != authcore.PushExpired {
				t.Fatalf("status %s, want EXPIRED", st)
			}
			wantCode(t, e.gw.StepUp.ResolvePush(ctx, "AUTHY", id2, authcore.PushVerified), authcore.CodeStateInvalid)
			_, err = e.gw.StepUp.IssuePush(ctx, s, "AUTHY")
			wantCode(t, err, authcore.CodeChallengeLimitExceeded)
		})

		t.Run("simulator, sandbox only", func(t *testing.T) {
			e := newStepUpEnv(t, newStore, realTime, clk, false)
			s := e.login(t, "alice@example.com")
			id, _ := e.gw.StepUp.IssuePush(ctx, s, "AUTHY")
			if _, err := e.gw.StepUp.SimulatePush(ctx, "1001", id, authcore.SimulateSuccess); !errors.Is(err, authcore.ErrNotFound) {
				t.Fatalf("simulator outside sandbox: %v", err)
			}
			sb := newStepUpEnv(t, newStore, realTime, clk, true)
			s = sb.login(t, "alice@example.com")
			id, _ = sb.gw.StepUp.IssuePush(ctx, s, "AUTHY")
			if _, err := sb.gw.StepUp.SimulatePush(ctx, "1002", id, authcore.SimulateSuccess); !errors.Is(err, authcore.ErrNotFound) {
				t.Fatalf("someone else's push: %v", err)
			}
			if got, err := sb.gw.StepUp.SimulatePush(ctx, "1001", id, authcore.SimulateSuccess); err != nil || got != "COMPLETED" {
				t.Fatalf("verify_success: %q %v", got, err)
			}
			if !reload(t, sb.gw, s).IsSteppedUp(clk.Now(), 0) {
				t.Fatal("not stepped up by the simulator")
			}
			s2 := sb.login(t, "alice@example.com")
			id2, _ := sb.gw.StepUp.IssuePush(ctx, s2, "AUTHY")
			if got, err := sb.gw.StepUp.SimulatePush(ctx, "1001", id2, authcore.SimulateInvalid); err != nil || got != "DENIED" {
				t.Fatalf("verify_invalid: %q %v", got, err)
			}
			if st, _ := sb.gw.StepUp.PushStatus(ctx, s2, "AUTHY", id2); st != authcore.PushDeclined {
				t.Fatalf("status %s", st)
			}
			id3, _ := sb.gw.StepUp.IssuePush(ctx, s2, "AUTHY")
			if got, err := sb.gw.StepUp.SimulatePush(ctx, "1001", id3, authcore.SimulateExpired); err != nil || got != "DENIED" {
				t.Fatalf("verify_expired: %q %v", got, err)
			}
			if st, _ := sb.gw.StepUp.PushStatus(ctx, s2, "AUTHY", id3); st != authcore.PushExpired {
				t.Fatalf("status %s", st)
			}
		})
	})
}

func TestFactorEnrolment(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore nodeStores, realTime bool, clk *clock) {
		ctx := context.Background()
		e := newStepUpEnv(t, newStore, realTime, clk, false)
		s := e.login(t, "bob@example.com")
		factors := func(gw *authcore.Services) string {
			f, err := gw.StepUp.Factors(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(f)
		}
		if got := factors(e.gw); got != "[]" {
			t.Fatalf("factors %s", got)
		}
		if err := e.gw.StepUp.EnrolPush(ctx, s, "AUTHY"); !errors.Is(err, authcore.ErrStepUpRequired) {
			t.Fatalf("push enrolment without step-up: %v", err)
		}
		wantCode(t, e.gw.StepUp.VerifyEnrolOTP(ctx, s, "SMS", "123456"), authcore.CodeStateInvalid) // not started

		wantCode(t, e.gw.StepUp.EnrolOTP(ctx, s, "SMS"), "")
		if msg := e.otp.Last(t); msg.To != "+35699000002" || msg.Purpose != "enrolment" {
			t.Fatalf("sent %+v", msg)
		}
		if got := factors(e.gw2); got != "[{OTP PENDING_VERIFICATION SMS}]" {
			t.Fatalf("pending factors %s", got)
		}
		wantCode(t, e.gw2.StepUp.VerifyEnrolOTP(ctx, s, "SMS", e.otp.Last(t).Code), "")
		if got := factors(e.gw); got != "[{OTP ACTIVE SMS}]" {
			t.Fatalf("factors after verify %s", got)
		}
		s = reload(t, e.gw, s)
		if !s.IsSteppedUp(clk.Now(), 0) {
			t.Fatal("enrolment did not step the session up")
		}
		wantCode(t, e.gw.StepUp.EnrolOTP(ctx, s, "SMS"), authcore.CodeChannelAlreadyRegistered)

		// Stepped up: push enrolment works, once; removal works, once.
		wantCode(t, e.gw.StepUp.EnrolPush(ctx, s, "BIOMETRIC"), "")
		wantCode(t, e.gw2.StepUp.EnrolPush(ctx, s, "BIOMETRIC"), authcore.CodeChannelAlreadyRegistered)
		if got := factors(e.gw2); got != "[{OTP ACTIVE SMS} {PUSH ACTIVE BIOMETRIC}]" {
			t.Fatalf("factors %s", got)
		}
		// The enrolled SMS factor now serves step-up on any node.
		e.wait(testResend + 50*time.Millisecond)
		wantCode(t, e.gw2.StepUp.IssueOTP(ctx, s, "SMS"), "")
		wantCode(t, e.gw.StepUp.RemovePush(ctx, s, "BIOMETRIC"), "")
		wantCode(t, e.gw.StepUp.RemovePush(ctx, s, "BIOMETRIC"), authcore.CodeChannelNotRegistered)

		dave := e.login(t, "dave@example.com")
		wantCode(t, e.gw.StepUp.EnrolOTP(ctx, dave, "SMS"), authcore.CodeMobileNumberNotAvailable)
	})
}

func TestStepUpMaxAgeFollowsTheClock(t *testing.T) {
	gw, clk, store := newTestServices(t)
	ctx := context.Background()
	res, _ := gw.Sessions.Login(ctx, "alice@example.com", testPassword)
	access, _ := gw.Sessions.AccessToken(ctx, res.Session, authcore.IdentityRef{Type: "CONSUMER", ID: "2001"})
	policy := &authcore.GuardPolicy{Token: "access", StepUp: true, MaxAge: 10 * time.Minute}
	if _, rej := admit(gw, ctx, "Bearer "+access, policy); rej == nil || rej.ErrorCode != "STEP_UP_REQUIRED" {
		t.Fatalf("before step-up: %+v", rej)
	}
	s := *res.Session
	s.SteppedUp, s.StepUpMethod = clk.Now(), authcore.StepUpOTP
	_ = store.SaveSession(ctx, &s, 5*time.Minute)
	for i := 0; i < 2; i++ { // 8 minutes later, still fresh
		clk.Advance(4 * time.Minute)
		if _, rej := admit(gw, ctx, "Bearer "+access, policy); rej != nil {
			t.Fatalf("within max_age: %+v", rej)
		}
	}
	clk.Advance(4 * time.Minute) // 12 minutes after the step-up
	_, rej := admit(gw, ctx, "Bearer "+access, policy)
	if rej == nil || rej.ErrorCode != "STEP_UP_REQUIRED" || !strings.Contains(rej.Challenge, "max_age=600") {
		t.Fatalf("past max_age: %+v", rej)
	}
	// Tokens issued after the step-up carry it for backends that verify them.
	fresh, _ := gw.Sessions.IssueToken(&s, authcore.TokenAccess, s.Identity)
	c, _ := gw.Tokens.Verify(fresh)
	if strings.Join(c.AMR, ",") != "pwd,otp" || c.AuthTime != s.SteppedUp.Unix() {
		t.Fatalf("amr %v auth_time %d", c.AMR, c.AuthTime)
	}
}

// TestMissingSenderUsesUpNoIssue: without an otp_sender (outside sandbox)
// issuing answers ErrNoSender before any code is made, so the resend
// cooldown and the round's issues are untouched.
func TestMissingSenderUsesUpNoIssue(t *testing.T) {
	clk := authtest.NewClock(time.Now())
	store := memory.New(clk.Now)
	defer store.Close()
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	gw, err := authcore.New(authcore.Options{Store: store, Users: stepUpUsers(t),
		Tokens: authcore.NewTokens("t", key, clk.Now), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := gw.Sessions.Login(context.Background(), "alice@example.com", testPassword)
	for i := 0; i < 3; i++ {
		if err := gw.StepUp.IssueOTP(context.Background(), res.Session, "SMS"); !errors.Is(err, authcore.ErrNoSender) {
			t.Fatalf("attempt %d: %v, want ErrNoSender", i+1, err)
		}
	}
}

// otherCode is a six-digit code that is not code.
func otherCode(code string) string { return fmt.Sprintf("%06d", (atoi(code)+1)%1000000) }

// A round takes five wrong codes in all, the one resend included: the
// resend does not reset the count.
func TestWrongCodesCountAcrossTheResend(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore nodeStores, realTime bool, clk *clock) {
		ctx := context.Background()
		for _, tc := range []struct {
			name, email string
			issue       func(gw *authcore.Services, s *authcore.Session) error
			verify      func(gw *authcore.Services, s *authcore.Session, code string) error
		}{
			{"step-up", "alice@example.com",
				func(gw *authcore.Services, s *authcore.Session) error { return gw.StepUp.IssueOTP(ctx, s, "SMS") },
				func(gw *authcore.Services, s *authcore.Session, code string) error {
					return gw.StepUp.VerifyOTP(ctx, s, "SMS", code)
				}},
			{"enrolment", "bob@example.com",
				func(gw *authcore.Services, s *authcore.Session) error { return gw.StepUp.EnrolOTP(ctx, s, "SMS") },
				func(gw *authcore.Services, s *authcore.Session, code string) error {
					return gw.StepUp.VerifyEnrolOTP(ctx, s, "SMS", code)
				}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := newStepUpEnv(t, newStore, realTime, clk, false)
				s := e.login(t, tc.email)
				wantCode(t, tc.issue(e.gw, s), "")
				wrong := otherCode(e.otp.Last(t).Code)
				for _, want := range []string{authcore.CodeVerificationCodeInvalid, authcore.CodeVerificationCodeInvalid,
					authcore.CodeVerificationCodeInvalid, authcore.CodeOneChallengeLimitLeft} {
					wantCode(t, tc.verify(e.gw, s, wrong), want)
				}
				e.wait(testResend + 50*time.Millisecond)
				wantCode(t, tc.issue(e.gw2, s), "") // the resend, on the other node
				code := e.otp.Last(t).Code
				wantCode(t, tc.verify(e.gw2, s, otherCode(code)), authcore.CodeChallengeLimitExceeded)
				wantCode(t, tc.verify(e.gw, s, code), authcore.CodeStateInvalid)
				if reload(t, e.gw, s).IsSteppedUp(clk.Now(), 0) {
					t.Fatal("stepped up after five wrong codes")
				}
			})
		}
	})
}
