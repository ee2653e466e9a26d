package multiapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/authtest"
	"github.com/authgate/authgate/authcore/multiapi"
	"github.com/authgate/authgate/authcore/store/memory"
)

// The step-up, push, factor and simulator routes of SPEC §5, driven over
// HTTP. Every fixture logs to a buffer and, when its test ends, checks that
// no code, token, signature, password, api-key or push secret was logged
// (SPEC §9).

const (
	stepUpPassword   = "Correct-Horse-1"
	stepUpPushSecret = "push-secret-for-the-multiapi-tests"
	testResendEvery  = 200 * time.Millisecond
	// pastResend is a clock advance that outlasts testResendEvery.
	pastResend = testResendEvery + 60*time.Millisecond
)

// The users of the step-up fixtures.
const (
	aliceEmail = "alice@example.com" // SMS and AUTHY enrolled, text number
	bobEmail   = "bob@example.com"   // a phone, no factors
	daveEmail  = "dave@example.com"  // neither phone nor factors
	aliceID    = "1001"
	bobID      = "1002"
)

// codeRecorder is an authcore.Sender that keeps what it was asked to send.
type codeRecorder struct {
	mu   sync.Mutex
	msgs []authcore.Message
}

func (r *codeRecorder) Send(_ context.Context, m authcore.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return nil
}

func (r *codeRecorder) all() []authcore.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *codeRecorder) count() int { return len(r.all()) }

func (r *codeRecorder) last(t *testing.T) authcore.Message {
	t.Helper()
	msgs := r.all()
	if len(msgs) == 0 {
		t.Fatal("nothing was sent")
	}
	return msgs[len(msgs)-1]
}

// failingSender records what it was asked to send and then fails.
type failingSender struct{ codeRecorder }

func (f *failingSender) Send(ctx context.Context, m authcore.Message) error {
	_ = f.codeRecorder.Send(ctx, m)
	return errors.New("provider answered 503")
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Sync() error { return nil }

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type stepUpConfig struct {
	sandbox bool
	// codeTTL is the life of codes and pushes (default: the gateway's 5m).
	codeTTL time.Duration
	apiKeys []string
	// senders: "" records, "none" configures none, "failing" records and
	// then fails as a provider that is down would.
	senders string
	// noPushSecret leaves the push secret unset.
	noPushSecret bool
	// rateLimits are the per-IP limits; none unless set, so that the
	// flows below are not cut short by them.
	rateLimits map[string]authcore.RateLimit
	// accountReadLatency delays every read of an account record
	// (authcore.Keys.Account), as a slow network round trip to Redis
	// would, to widen the window concurrent factor changes race in.
	accountReadLatency time.Duration
}

// slowAccountStore is a store whose reads of account records take a while.
type slowAccountStore struct {
	*memory.Store
	latency time.Duration
}

// Get reads the value at once and returns it a while later, as an answer
// travelling back from Redis would.
func (s slowAccountStore) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := s.Store.Get(ctx, key)
	if spec, _ := authcore.KeySpecOf(key); spec.Name == "account" {
		time.Sleep(s.latency)
	}
	return data, err
}

type stepUpFixture struct {
	srv *httptest.Server
	// clk is the gateway's, the store's and the tokens' clock: the tests
	// move it past a resend interval or a code's life instead of sleeping,
	// so a loaded machine cannot stretch a window they check.
	clk    *authtest.Clock
	otp    *codeRecorder
	push   *codeRecorder
	logs   *lockedBuffer
	apiKey string // sent on every request that does not opt out

	mu      sync.Mutex
	secrets []string // what must never reach the logs
}

// newStepUpFixture serves the Multi API with recording senders, a push
// secret, a 200ms resend interval on a clock the test moves (clk) and a
// logger writing to a buffer.
func newStepUpFixture(t *testing.T, cfg stepUpConfig) *stepUpFixture {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte(stepUpPassword), bcrypt.MinCost)
	users, err := authcore.NewStaticUsers([]authcore.User{
		{ID: aliceID, CredentialsType: "ROOT", Email: aliceEmail, Password: string(hash), TextNumber: "+35699000001",
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001", Name: "Alice"}},
			Factors:    authcore.Factors{OTP: []string{"SMS"}, Push: []string{"AUTHY"}}},
		{ID: bobID, CredentialsType: "USER", Email: bobEmail, Password: string(hash), Phone: "+35699000002",
			Identities: []authcore.Identity{{Type: "CORPORATE", ID: "3001", Name: "Bob Ltd"}}},
		{ID: "1003", CredentialsType: "USER", Email: daveEmail, Password: string(hash),
			Identities: []authcore.Identity{{Type: "CORPORATE", ID: "3002", Name: "Dave Ltd"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &stepUpFixture{clk: authtest.NewClock(time.Now()), otp: &codeRecorder{}, push: &codeRecorder{}, logs: &lockedBuffer{}}
	if len(cfg.apiKeys) > 0 {
		f.apiKey = cfg.apiKeys[0]
	}
	f.secrets = append(f.secrets, stepUpPassword, stepUpPushSecret)
	f.secrets = append(f.secrets, cfg.apiKeys...)

	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg", LevelKey: "level",
		EncodeLevel: zapcore.LowercaseLevelEncoder, EncodeDuration: zapcore.StringDurationEncoder})
	logger := zap.New(zapcore.NewCore(enc, f.logs, zap.DebugLevel))

	mem := memory.New(f.clk.Now)
	t.Cleanup(func() { mem.Close() })
	var store authcore.Store = mem
	if cfg.accountReadLatency > 0 {
		store = slowAccountStore{mem, cfg.accountReadLatency}
	}
	rateLimits := cfg.rateLimits
	if rateLimits == nil {
		rateLimits = map[string]authcore.RateLimit{} // none
	}
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	var otpSender, pushSender authcore.Sender = f.otp, f.push
	switch cfg.senders {
	case "none":
		otpSender, pushSender = nil, nil
	case "failing":
		otp, push := &failingSender{}, &failingSender{}
		f.otp, f.push = &otp.codeRecorder, &push.codeRecorder
		otpSender, pushSender = otp, push
	}
	pushSecret := []byte(stepUpPushSecret)
	if cfg.noPushSecret {
		pushSecret = nil
	}
	gw, err := authcore.New(authcore.Options{Store: store, Users: users,
		Tokens: authcore.NewTokens("test", key, f.clk.Now), Now: f.clk.Now, PasswordHash: testHashParams, Logger: logger,
		Sandbox: cfg.sandbox, OTPSender: otpSender, PushSender: pushSender, PushSecret: pushSecret,
		CodeKey: key.Derive("codes"), CodeTTL: cfg.codeTTL, ResendInterval: testResendEvery,
		RateLimits: rateLimits})
	if err != nil {
		t.Fatal(err)
	}
	var refs atomic.Int64
	f.srv = httptest.NewServer(multiapi.New(multiapi.Options{Sessions: gw.Sessions, Accounts: gw.Accounts, Passwords: gw.Passwords,
		StepUp: gw.StepUp, Tokens: gw.Tokens, Logger: gw.Logger, APIKeys: cfg.apiKeys,
		// Deterministic request refs keep random digits out of the logs,
		// so that a code found there is a leak, not a coincidence.
		RequestRef: func(*http.Request) string { return fmt.Sprintf("ref-%d", refs.Add(1)) }}))
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { f.assertNothingSecretLogged(t) })
	return f
}

// remember adds a value that must never be logged.
func (f *stepUpFixture) remember(secret string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets = append(f.secrets, secret)
}

// rememberToken adds a token, and its signature on its own, to the values
// that must never be logged.
func (f *stepUpFixture) rememberToken(tok string) {
	f.remember(tok)
	f.remember(tok[strings.LastIndexByte(tok, '.')+1:])
}

func (f *stepUpFixture) assertNothingSecretLogged(t *testing.T) {
	t.Helper()
	logs := f.logs.String()
	f.mu.Lock()
	secrets := slices.Clone(f.secrets)
	f.mu.Unlock()
	for _, m := range append(f.otp.all(), f.push.all()...) {
		if m.Code != "" {
			secrets = append(secrets, m.Code)
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("a secret (%.6s...) appears in the logs:\n%s", s, logs)
		}
	}
}

type suRequest struct {
	method, path, token, body string
	headers                   map[string]string
	noAPIKey                  bool
}

type suResponse struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any // the body when it is a JSON object
}

func (f *stepUpFixture) send(t *testing.T, r suRequest) suResponse {
	t.Helper()
	req, err := http.NewRequest(r.method, f.srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if f.apiKey != "" && !r.noAPIKey {
		req.Header.Set("api-key", f.apiKey)
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := suResponse{status: resp.StatusCode, header: resp.Header, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	if resp.Header.Get("request-ref") == "" {
		t.Errorf("%s %s: no request-ref header", r.method, r.path)
	}
	if len(raw) > 0 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("%s %s: Content-Type %q with a body", r.method, r.path, resp.Header.Get("Content-Type"))
	}
	return out
}

func (f *stepUpFixture) post(t *testing.T, path, token, body string) suResponse {
	t.Helper()
	return f.send(t, suRequest{method: "POST", path: path, token: token, body: body})
}

func (f *stepUpFixture) get(t *testing.T, path, token string) suResponse {
	t.Helper()
	return f.send(t, suRequest{method: "GET", path: path, token: token})
}

func (f *stepUpFixture) delete(t *testing.T, path, token string) suResponse {
	t.Helper()
	return f.send(t, suRequest{method: "DELETE", path: path, token: token})
}

// login opens a session and returns its AUTH token.
func (f *stepUpFixture) login(t *testing.T, email string) string {
	t.Helper()
	r := f.post(t, "/login_with_password", "", `{"email":"`+email+`","password":{"value":"`+stepUpPassword+`"}}`)
	tok, _ := r.body["token"].(string)
	if r.status != http.StatusOK || tok == "" {
		t.Fatalf("login %s: %d %s", email, r.status, r.raw)
	}
	f.rememberToken(tok)
	return tok
}

// accessToken returns a fresh ACCESS token of the session and the status
// POST /access_token reports (STANDARD or STEPPED_UP).
func (f *stepUpFixture) accessToken(t *testing.T, token string) (string, string) {
	t.Helper()
	r := f.get(t, "/identities", token)
	var ids []struct {
		ID json.RawMessage `json:"id"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.raw, &ids) != nil || len(ids) == 0 {
		t.Fatalf("identities: %d %s", r.status, r.raw)
	}
	r = f.post(t, "/access_token", token, `{"identity":`+string(ids[0].ID)+`}`)
	tok, _ := r.body["token"].(string)
	if r.status != http.StatusOK || tok == "" {
		t.Fatalf("access_token: %d %s", r.status, r.raw)
	}
	f.rememberToken(tok)
	status, _ := r.body["status"].(string)
	return tok, status
}

// sessionStatus is the session's step-up status as POST /access_token
// reports it.
func (f *stepUpFixture) sessionStatus(t *testing.T, token string) string {
	t.Helper()
	_, status := f.accessToken(t, token)
	return status
}

func (f *stepUpFixture) wantStatus(t *testing.T, token, want string) {
	t.Helper()
	if got := f.sessionStatus(t, token); got != want {
		t.Fatalf("access_token status %q, want %q", got, want)
	}
}

// sign returns the signature header value of body and remembers it.
func (f *stepUpFixture) sign(body string) string {
	sig := authcore.SignHMAC([]byte(body), []byte(stepUpPushSecret))
	f.remember(sig)
	return sig
}

func (f *stepUpFixture) resolve(t *testing.T, channel, id, body, signature string) suResponse {
	t.Helper()
	h := map[string]string{}
	if signature != "" {
		h["signature"] = signature
	}
	return f.send(t, suRequest{method: "POST", path: "/stepup/challenges/push/" + channel + "/" + id + "/resolve", body: body, headers: h})
}

func (f *stepUpFixture) resolveSigned(t *testing.T, id, status string) suResponse {
	t.Helper()
	body := `{"status":"` + status + `"}`
	return f.resolve(t, "AUTHY", id, body, f.sign(body))
}

// issueCode issues a step-up code to the session and returns it.
func (f *stepUpFixture) issueCode(t *testing.T, token string) string {
	t.Helper()
	before := f.otp.count()
	wantNoContent(t, f.post(t, "/stepup/challenges/otp/SMS", token, ""))
	if f.otp.count() != before+1 {
		t.Fatalf("%d codes sent, want one more than %d", f.otp.count(), before)
	}
	return f.otp.last(t).Code
}

func (f *stepUpFixture) verifyCode(t *testing.T, token, code string) suResponse {
	t.Helper()
	return f.post(t, "/stepup/challenges/otp/SMS/verify", token, `{"verificationCode":"`+code+`"}`)
}

// issuePush issues an AUTHY push for the session and returns its id.
func (f *stepUpFixture) issuePush(t *testing.T, token string) string {
	t.Helper()
	r := f.post(t, "/stepup/challenges/push/AUTHY", token, "")
	id, _ := r.body["id"].(string)
	if r.status != http.StatusOK || id == "" {
		t.Fatalf("push issue: %d %s", r.status, r.raw)
	}
	return id
}

func (f *stepUpFixture) pushStatus(t *testing.T, token, id string) string {
	t.Helper()
	r := f.get(t, "/stepup/challenges/push/AUTHY/"+id, token)
	if r.status != http.StatusOK {
		t.Fatalf("push status: %d %s", r.status, r.raw)
	}
	status, _ := r.body["status"].(string)
	return status
}

// stepUp steps the session up with an SMS code.
func (f *stepUpFixture) stepUp(t *testing.T, token string) {
	t.Helper()
	wantNoContent(t, f.verifyCode(t, token, f.issueCode(t, token)))
}

// wrongCode returns a code that is not code.
func wrongCode(code string) string {
	n, _ := strconv.Atoi(code)
	return fmt.Sprintf("%06d", (n+1)%1000000)
}

// Assertions on the documented response shapes (SPEC §5).

func wantNoContent(t *testing.T, r suResponse) {
	t.Helper()
	if r.status != http.StatusNoContent || len(r.raw) != 0 {
		t.Fatalf("got %d %s, want 204 without a body", r.status, r.raw)
	}
}

// wantErrorCode checks a {"errorCode"} answer, byte for byte.
func wantErrorCode(t *testing.T, r suResponse, status int, code string) {
	t.Helper()
	if want := `{"errorCode":"` + code + `"}`; r.status != status || string(r.raw) != want {
		t.Fatalf("got %d %s, want %d %s", r.status, r.raw, status, want)
	}
}

// wantMessage checks a {"message"} answer.
func wantMessage(t *testing.T, r suResponse, status int) {
	t.Helper()
	msg, _ := r.body["message"].(string)
	if r.status != status || msg == "" || len(r.body) != 1 {
		t.Fatalf("got %d %s, want %d {\"message\"}", r.status, r.raw, status)
	}
}

// wantInvalid checks a 400 whose invalidFields are exactly one field.
func wantInvalid(t *testing.T, r suResponse, field, code string, params ...string) {
	t.Helper()
	var body struct {
		Message      *string `json:"message"`
		SyntaxErrors *struct {
			InvalidFields []struct {
				Params    []string `json:"params"`
				FieldName string   `json:"fieldName"`
				Error     string   `json:"error"`
			} `json:"invalidFields"`
		} `json:"syntaxErrors"`
	}
	if r.status != http.StatusBadRequest || json.Unmarshal(r.raw, &body) != nil || body.Message == nil || body.SyntaxErrors == nil {
		t.Fatalf("got %d %s, want 400 with message and syntaxErrors", r.status, r.raw)
	}
	fields := body.SyntaxErrors.InvalidFields
	if len(fields) != 1 || fields[0].FieldName != field || fields[0].Error != code || fields[0].Params == nil {
		t.Fatalf("invalidFields %s, want one %s %s", r.raw, field, code)
	}
	if params != nil && !slices.Equal(fields[0].Params, params) {
		t.Fatalf("params %v, want %v", fields[0].Params, params)
	}
}

// want400 checks a 400 in the documented shape, whatever its fields.
func want400(t *testing.T, r suResponse) {
	t.Helper()
	if r.status != http.StatusBadRequest || r.body["message"] == nil {
		t.Fatalf("got %d %s, want 400 with a message", r.status, r.raw)
	}
	se, ok := r.body["syntaxErrors"].(map[string]any)
	if !ok {
		t.Fatalf("no syntaxErrors: %s", r.raw)
	}
	if _, ok := se["invalidFields"].([]any); !ok {
		t.Fatalf("no syntaxErrors.invalidFields list: %s", r.raw)
	}
}

var digits = regexp.MustCompile(`^[0-9]+$`)

// Step-up with an SMS code.

func TestStepUpOTPIssueSendsACodeToTheEnrolledNumber(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	r := f.post(t, "/stepup/challenges/otp/SMS", tok, "")
	wantNoContent(t, r)
	msg := f.otp.last(t)
	if msg.To != "+35699000001" || msg.Channel != "SMS" || msg.Purpose != authcore.PurposeStepUp ||
		len(msg.Code) != 6 || !digits.MatchString(msg.Code) || msg.ExpiresAt.IsZero() {
		t.Fatalf("sent %+v", msg)
	}
	if f.push.count() != 0 {
		t.Fatal("an SMS code went through the push sender")
	}
}

func TestStepUpOTPInSandboxIs123456AndSendsNothing(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{sandbox: true})
	f.remember(authcore.SandboxCode)
	tok := f.login(t, aliceEmail)
	wantNoContent(t, f.post(t, "/stepup/challenges/otp/SMS", tok, ""))
	if f.otp.count() != 0 {
		t.Fatalf("sandbox sent %+v", f.otp.all())
	}
	wantErrorCode(t, f.verifyCode(t, tok, "654321"), http.StatusConflict, authcore.CodeVerificationCodeInvalid)
	wantNoContent(t, f.verifyCode(t, tok, authcore.SandboxCode))
	f.wantStatus(t, tok, "STEPPED_UP")
}

func TestStepUpOTPIssueRefusals(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	t.Run("EMAIL is not a step-up channel", func(t *testing.T) {
		wantInvalid(t, f.post(t, "/stepup/challenges/otp/EMAIL", f.login(t, aliceEmail), ""), "channel", "IN", "SMS")
	})
	t.Run("a user without the SMS factor gets CHANNEL_NOT_REGISTERED", func(t *testing.T) {
		wantErrorCode(t, f.post(t, "/stepup/challenges/otp/SMS", f.login(t, bobEmail), ""), http.StatusConflict, authcore.CodeChannelNotRegistered)
	})
	t.Run("no bearer token is 401", func(t *testing.T) {
		wantMessage(t, f.post(t, "/stepup/challenges/otp/SMS", "", ""), http.StatusUnauthorized)
	})
	if f.otp.count() != 0 {
		t.Fatalf("refused issues sent %d codes", f.otp.count())
	}
}

func TestStepUpOTPResendOncePerRoundAndNotTooSoon(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	first := f.issueCode(t, tok)
	wantErrorCode(t, f.post(t, "/stepup/challenges/otp/SMS", tok, ""), http.StatusConflict, authcore.CodeRetryIn15Sec)
	f.clk.Advance(pastResend)
	second := f.issueCode(t, tok) // the one resend
	f.clk.Advance(pastResend)
	wantErrorCode(t, f.post(t, "/stepup/challenges/otp/SMS", tok, ""), http.StatusConflict, authcore.CodeChallengeLimitExceeded)
	if n := f.otp.count(); n != 2 {
		t.Fatalf("%d codes sent, want 2", n)
	}
	// Another session of the same user has its own round.
	other := f.login(t, aliceEmail)
	f.issueCode(t, other)
	// Only the latest code of the session counts.
	if first != second {
		wantErrorCode(t, f.verifyCode(t, tok, first), http.StatusConflict, authcore.CodeVerificationCodeInvalid)
	}
	wantNoContent(t, f.verifyCode(t, tok, second))
	// A successful verify starts a new round.
	f.clk.Advance(pastResend)
	f.issueCode(t, tok)
}

func TestStepUpOTPConcurrentIssuesSendOneCode(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	const n = 10
	statuses := make(chan suResponse, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- f.post(t, "/stepup/challenges/otp/SMS", tok, "")
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for r := range statuses {
		if r.status == http.StatusNoContent {
			ok++
		} else if string(r.raw) != `{"errorCode":"RETRY_IN_15SEC"}` {
			t.Errorf("concurrent issue: %d %s", r.status, r.raw)
		}
	}
	if ok != 1 || f.otp.count() != 1 {
		t.Fatalf("%d issues accepted and %d codes sent, want 1 and 1", ok, f.otp.count())
	}
}

func TestStepUpOTPVerifyRightCodeStepsTheSessionUpOnce(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	before, status := f.accessToken(t, tok) // issued before the step-up
	if status != "STANDARD" {
		t.Fatalf("status before step-up %q", status)
	}
	code := f.issueCode(t, tok)
	wantNoContent(t, f.verifyCode(t, tok, code))
	f.wantStatus(t, tok, "STEPPED_UP")
	// Step-up is a property of the session (SPEC §4): the ACCESS token
	// issued before it sees it too.
	f.wantStatus(t, before, "STEPPED_UP")
	wantErrorCode(t, f.verifyCode(t, tok, code), http.StatusConflict, authcore.CodeAlreadyVerified)
	// Another session of the same user is not stepped up, and has no
	// challenge of its own.
	other := f.login(t, aliceEmail)
	f.wantStatus(t, other, "STANDARD")
	wantErrorCode(t, f.verifyCode(t, other, code), http.StatusConflict, authcore.CodeStateInvalid)
}

func TestStepUpOTPWrongCodesUseUpFiveAttempts(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	code := f.issueCode(t, tok)
	wrong := wrongCode(code)
	for i, want := range []string{
		authcore.CodeVerificationCodeInvalid, authcore.CodeVerificationCodeInvalid, authcore.CodeVerificationCodeInvalid,
		authcore.CodeOneChallengeLimitLeft, authcore.CodeChallengeLimitExceeded,
		authcore.CodeStateInvalid,
	} {
		t.Logf("wrong code %d", i+1)
		wantErrorCode(t, f.verifyCode(t, tok, wrong), http.StatusConflict, want)
	}
	// After the fifth, even the right code is refused.
	wantErrorCode(t, f.verifyCode(t, tok, code), http.StatusConflict, authcore.CodeStateInvalid)
	f.wantStatus(t, tok, "STANDARD")
}

func TestStepUpOTPRightCodeAfterWrongOnes(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	for _, tc := range []struct {
		wrong int
		want  string // "" = 204
	}{
		{0, ""}, {1, ""}, {3, ""}, {4, ""}, // the 5th attempt may still be the right one
		{5, authcore.CodeStateInvalid},
	} {
		t.Run(fmt.Sprintf("after %d wrong codes", tc.wrong), func(t *testing.T) {
			tok := f.login(t, aliceEmail)
			code := f.issueCode(t, tok)
			for range tc.wrong {
				if r := f.verifyCode(t, tok, wrongCode(code)); r.status != http.StatusConflict {
					t.Fatalf("wrong code: %d %s", r.status, r.raw)
				}
			}
			r := f.verifyCode(t, tok, code)
			if tc.want == "" {
				wantNoContent(t, r)
				f.wantStatus(t, tok, "STEPPED_UP")
				return
			}
			wantErrorCode(t, r, http.StatusConflict, tc.want)
			f.wantStatus(t, tok, "STANDARD")
		})
	}
}

func TestStepUpOTPConcurrentRightCodesAreAcceptedOnce(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	code := f.issueCode(t, tok)
	const n = authcore.MaxCodeAttempts - 1 // all within the attempts
	answers := make(chan suResponse, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- f.verifyCode(t, tok, code)
		}()
	}
	wg.Wait()
	close(answers)
	accepted := 0
	for r := range answers {
		if r.status == http.StatusNoContent {
			accepted++
		} else if string(r.raw) != `{"errorCode":"ALREADY_VERIFIED"}` {
			t.Errorf("concurrent verify: %d %s", r.status, r.raw)
		}
	}
	if accepted != 1 {
		t.Fatalf("the code was accepted %d times, want once", accepted)
	}
	f.wantStatus(t, tok, "STEPPED_UP")
}

func TestStepUpOTPVerifyWithoutAChallengeIsStateInvalid(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	wantErrorCode(t, f.verifyCode(t, tok, "123456"), http.StatusConflict, authcore.CodeStateInvalid)
	f.wantStatus(t, tok, "STANDARD")
}

func TestStepUpOTPCodeExpires(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{codeTTL: 200 * time.Millisecond})
	tok := f.login(t, aliceEmail)
	code := f.issueCode(t, tok)
	f.clk.Advance(300 * time.Millisecond)
	wantErrorCode(t, f.verifyCode(t, tok, code), http.StatusConflict, authcore.CodeVerificationCodeExpired)
	f.wantStatus(t, tok, "STANDARD")
}

func TestStepUpOTPVerifyRefusesBadRequests(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	f.issueCode(t, tok)
	const path = "/stepup/challenges/otp/SMS/verify"
	cases := []struct {
		name, path, body string
		field, code      string // "" = any 400 in the documented shape
	}{
		{"missing verificationCode", path, `{}`, "verificationCode", "REQUIRED"},
		{"null verificationCode", path, `{"verificationCode":null}`, "verificationCode", "REQUIRED"},
		{"empty verificationCode", path, `{"verificationCode":""}`, "verificationCode", "REQUIRED"},
		{"verificationCode a number", path, `{"verificationCode":123456}`, "verificationCode", "REGEX"},
		{"verificationCode too long", path, `{"verificationCode":"` + strings.Repeat("1", 51) + `"}`, "verificationCode", "SIZE"},
		{"malformed JSON", path, `{"verificationCode":`, "", ""},
		{"not an object", path, `["123456"]`, "", ""},
		{"empty body", path, ``, "", ""},
		{"invalid UTF-8", path, "{\"verificationCode\":\"\xff\"}", "", ""},
		{"EMAIL channel", "/stepup/challenges/otp/EMAIL/verify", `{"verificationCode":"123456"}`, "channel", "IN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.post(t, tc.path, tok, tc.body)
			if tc.field == "" {
				want400(t, r)
				return
			}
			wantInvalid(t, r, tc.field, tc.code)
		})
	}
	// None of them used up an attempt.
	wantNoContent(t, f.verifyCode(t, tok, f.otp.last(t).Code))
}

func TestStepUpOTPVerifyNeedsABearerToken(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	for name, tok := range map[string]string{"none": "", "forged": "not-a-token"} {
		t.Run(name, func(t *testing.T) {
			wantMessage(t, f.verifyCode(t, tok, "123456"), http.StatusUnauthorized)
		})
	}
}

func TestStepUpOTPVerifyForAUserWithoutTheFactor(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	wantErrorCode(t, f.verifyCode(t, f.login(t, bobEmail), "123456"), http.StatusConflict, authcore.CodeChannelNotRegistered)
}

// Step-up with a push.

func TestPushIssueReturnsADigitIDAndSendsThePush(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	r := f.post(t, "/stepup/challenges/push/AUTHY", tok, "")
	id, _ := r.body["id"].(string)
	if r.status != http.StatusOK || len(r.body) != 1 || !digits.MatchString(id) {
		t.Fatalf("got %d %s, want 200 {\"id\": digits}", r.status, r.raw)
	}
	msg := f.push.last(t)
	if msg.ChallengeID != id || msg.To != aliceID || msg.Channel != "AUTHY" || msg.Purpose != authcore.PurposeStepUp || msg.Code != "" {
		t.Fatalf("push sent %+v", msg)
	}
	if f.otp.count() != 0 {
		t.Fatal("a push went through the OTP sender")
	}
	r = f.get(t, "/stepup/challenges/push/AUTHY/"+id, tok)
	if r.status != http.StatusOK || string(r.raw) != `{"id":"`+id+`","status":"PENDING"}` {
		t.Fatalf("status: %d %s", r.status, r.raw)
	}
}

func TestPushIssueRefusals(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	alice := f.login(t, aliceEmail)
	t.Run("SMS is not a push channel", func(t *testing.T) {
		wantInvalid(t, f.post(t, "/stepup/challenges/push/SMS", alice, ""), "channel", "IN", "AUTHY", "BIOMETRIC")
	})
	t.Run("a channel the user has not enrolled", func(t *testing.T) {
		wantErrorCode(t, f.post(t, "/stepup/challenges/push/BIOMETRIC", alice, ""), http.StatusConflict, authcore.CodeChannelNotRegistered)
		wantErrorCode(t, f.post(t, "/stepup/challenges/push/AUTHY", f.login(t, bobEmail), ""), http.StatusConflict, authcore.CodeChannelNotRegistered)
	})
	t.Run("no bearer token", func(t *testing.T) {
		wantMessage(t, f.post(t, "/stepup/challenges/push/AUTHY", "", ""), http.StatusUnauthorized)
	})
	t.Run("two pushes per session", func(t *testing.T) {
		tok := f.login(t, aliceEmail)
		f.issuePush(t, tok)
		f.issuePush(t, tok)
		wantErrorCode(t, f.post(t, "/stepup/challenges/push/AUTHY", tok, ""), http.StatusConflict, authcore.CodeChallengeLimitExceeded)
	})
}

func TestPushStatusIsOnlyForTheSessionThatIssuedIt(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	for name, c := range map[string]struct{ path, token string }{
		"another session of the same user": {"/stepup/challenges/push/AUTHY/" + id, f.login(t, aliceEmail)},
		"another user":                     {"/stepup/challenges/push/AUTHY/" + id, f.login(t, bobEmail)},
		"the other push channel":           {"/stepup/challenges/push/BIOMETRIC/" + id, tok},
		"an unknown id":                    {"/stepup/challenges/push/AUTHY/123456789", tok},
	} {
		t.Run(name, func(t *testing.T) {
			wantMessage(t, f.get(t, c.path, c.token), http.StatusNotFound)
		})
	}
	t.Run("no bearer token", func(t *testing.T) {
		wantMessage(t, f.get(t, "/stepup/challenges/push/AUTHY/"+id, ""), http.StatusUnauthorized)
	})
	t.Run("SMS channel", func(t *testing.T) {
		wantInvalid(t, f.get(t, "/stepup/challenges/push/SMS/"+id, tok), "channel", "IN")
	})
}

func TestPushResolveVerifiedStepsUpAndIsIdempotent(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	f.wantStatus(t, tok, "STANDARD")

	wantNoContent(t, f.resolveSigned(t, id, authcore.PushVerified))
	if got := f.pushStatus(t, tok, id); got != authcore.PushVerified {
		t.Fatalf("push status %s", got)
	}
	f.wantStatus(t, tok, "STEPPED_UP")

	wantNoContent(t, f.resolveSigned(t, id, authcore.PushVerified)) // the provider retried
	wantErrorCode(t, f.resolveSigned(t, id, authcore.PushDeclined), http.StatusConflict, authcore.CodeStateInvalid)
	if got := f.pushStatus(t, tok, id); got != authcore.PushVerified {
		t.Fatalf("push status after a late DECLINED %s", got)
	}
	f.wantStatus(t, tok, "STEPPED_UP")
	// The session has resolved a push: no other.
	wantErrorCode(t, f.post(t, "/stepup/challenges/push/AUTHY", tok, ""), http.StatusConflict, authcore.CodeStateInvalid)
}

func TestPushResolveDeclinedDoesNotStepUp(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	wantNoContent(t, f.resolveSigned(t, id, authcore.PushDeclined))
	wantNoContent(t, f.resolveSigned(t, id, authcore.PushDeclined))
	wantErrorCode(t, f.resolveSigned(t, id, authcore.PushVerified), http.StatusConflict, authcore.CodeStateInvalid)
	if got := f.pushStatus(t, tok, id); got != authcore.PushDeclined {
		t.Fatalf("push status %s", got)
	}
	f.wantStatus(t, tok, "STANDARD")
}

func TestPushResolveOfAnExpiredPushIsStateInvalid(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{codeTTL: 200 * time.Millisecond})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	f.clk.Advance(300 * time.Millisecond)
	if got := f.pushStatus(t, tok, id); got != authcore.PushExpired {
		t.Fatalf("push status %s, want EXPIRED", got)
	}
	wantErrorCode(t, f.resolveSigned(t, id, authcore.PushVerified), http.StatusConflict, authcore.CodeStateInvalid)
	f.wantStatus(t, tok, "STANDARD")
}

func TestPushResolveRejectsBadSignatures(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	const verified = `{"status":"VERIFIED"}`
	otherSecret := authcore.SignHMAC([]byte(verified), []byte("another-secret"))
	declinedSig := f.sign(`{"status":"DECLINED"}`)
	for _, tc := range []struct{ name, body, signature string }{
		{"no signature", verified, ""},
		{"not base64", verified, "%%%"},
		{"empty MAC", verified, "AAAA"},
		{"signed with another secret", verified, otherSecret},
		{"the signature of another body", verified, declinedSig},
		{"body changed after signing", verified + " ", f.sign(verified)},
		{"hex instead of base64", verified, fmt.Sprintf("%x", []byte(f.sign(verified)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantMessage(t, f.resolve(t, "AUTHY", id, tc.body, tc.signature), http.StatusUnauthorized)
		})
	}
	if got := f.pushStatus(t, tok, id); got != authcore.PushPending {
		t.Fatalf("push status %s after forged resolves, want PENDING", got)
	}
	f.wantStatus(t, tok, "STANDARD")
}

func TestPushResolveOfAnUnknownPushIs404(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	body := `{"status":"VERIFIED"}`
	for name, path := range map[string]string{
		"unknown id":         "AUTHY/999999999999999999",
		"not digits":         "AUTHY/abc",
		"wrong push channel": "BIOMETRIC/" + id,
	} {
		t.Run(name, func(t *testing.T) {
			channel, pid, _ := strings.Cut(path, "/")
			wantMessage(t, f.resolve(t, channel, pid, body, f.sign(body)), http.StatusNotFound)
		})
	}
	if got := f.pushStatus(t, tok, id); got != authcore.PushPending {
		t.Fatalf("push status %s", got)
	}
}

func TestPushResolveRefusesBadBodies(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	for _, tc := range []struct{ name, body, field string }{
		{"EXPIRED is not a resolution", `{"status":"EXPIRED"}`, "status"},
		{"PENDING is not a resolution", `{"status":"PENDING"}`, "status"},
		{"missing status", `{}`, "status"},
		{"malformed JSON", `{"status":`, ""},
		{"empty body", ``, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.resolve(t, "AUTHY", id, tc.body, f.sign(tc.body))
			if tc.field == "" {
				want400(t, r)
				return
			}
			wantInvalid(t, r, tc.field, "IN", authcore.PushVerified, authcore.PushDeclined)
		})
	}
	t.Run("SMS channel", func(t *testing.T) {
		body := `{"status":"VERIFIED"}`
		wantInvalid(t, f.resolve(t, "SMS", id, body, f.sign(body)), "channel", "IN")
	})
	if got := f.pushStatus(t, tok, id); got != authcore.PushPending {
		t.Fatalf("push status %s", got)
	}
}

func TestPushResolveNeedsNeitherBearerTokenNorAPIKey(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{apiKeys: []string{"multi-api-key-1"}})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	// The api-key is enforced elsewhere...
	r := f.send(t, suRequest{method: "GET", path: "/stepup/challenges/push/AUTHY/" + id, token: tok, noAPIKey: true})
	wantInvalid(t, r, "api-key", "REQUIRED")
	// ...but not on the provider's signed callback.
	body := `{"status":"VERIFIED"}`
	r = f.send(t, suRequest{method: "POST", path: "/stepup/challenges/push/AUTHY/" + id + "/resolve", body: body,
		headers: map[string]string{"signature": f.sign(body)}, noAPIKey: true})
	wantNoContent(t, r)
	f.wantStatus(t, tok, "STEPPED_UP")
	// A wrong api-key is not a reason to refuse it either: it is ignored.
	r = f.send(t, suRequest{method: "POST", path: "/stepup/challenges/push/AUTHY/" + id + "/resolve", body: body,
		headers: map[string]string{"signature": f.sign(body), "api-key": "wrong"}, noAPIKey: true})
	wantNoContent(t, r)
}

func TestPushConcurrentResolvesAgreeOnOneAnswer(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	const n = 16
	type answer struct {
		status string
		resp   suResponse
	}
	answers := make(chan answer, n)
	var wg sync.WaitGroup
	for i := range n {
		status := authcore.PushVerified
		if i%2 == 1 {
			status = authcore.PushDeclined
		}
		body := `{"status":"` + status + `"}`
		sig := f.sign(body)
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers <- answer{status, f.resolve(t, "AUTHY", id, body, sig)}
		}()
	}
	wg.Wait()
	close(answers)
	final := f.pushStatus(t, tok, id)
	for a := range answers {
		switch {
		case a.status == final && a.resp.status == http.StatusNoContent:
		case a.status != final && string(a.resp.raw) == `{"errorCode":"STATE_INVALID"}`:
		default:
			t.Errorf("resolve %s answered %d %s; the push ended %s", a.status, a.resp.status, a.resp.raw, final)
		}
	}
	want := "STANDARD"
	if final == authcore.PushVerified {
		want = "STEPPED_UP"
	}
	f.wantStatus(t, tok, want)
}

// The push simulator (sandbox only).

func simulatePath(credentialsID, id, outcome string) string {
	return "/simulate/api/factors/" + credentialsID + "/challenges/" + id + "/" + outcome
}

func TestPushSimulatorResolvesPushesInSandbox(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{sandbox: true})
	for _, tc := range []struct {
		outcome, answer, pushStatus, session string
	}{
		{authcore.SimulateSuccess, "COMPLETED", authcore.PushVerified, "STEPPED_UP"},
		{authcore.SimulateInvalid, "DENIED", authcore.PushDeclined, "STANDARD"},
		{authcore.SimulateExpired, "DENIED", authcore.PushExpired, "STANDARD"},
	} {
		t.Run(tc.outcome, func(t *testing.T) {
			tok := f.login(t, aliceEmail)
			id := f.issuePush(t, tok)
			r := f.post(t, simulatePath(aliceID, id, tc.outcome), "", "")
			if r.status != http.StatusOK || string(r.raw) != `{"code":"`+tc.answer+`"}` {
				t.Fatalf("got %d %s, want 200 {\"code\":%q}", r.status, r.raw, tc.answer)
			}
			if got := f.pushStatus(t, tok, id); got != tc.pushStatus {
				t.Fatalf("push status %s, want %s", got, tc.pushStatus)
			}
			f.wantStatus(t, tok, tc.session)
		})
	}
	if f.push.count() != 0 {
		t.Fatalf("sandbox sent %d pushes", f.push.count())
	}
}

func TestPushSimulatorRefusals(t *testing.T) {
	sandbox := newStepUpFixture(t, stepUpConfig{sandbox: true})
	tok := sandbox.login(t, aliceEmail)
	id := sandbox.issuePush(t, tok)
	t.Run("someone else's credentials id", func(t *testing.T) {
		wantMessage(t, sandbox.post(t, simulatePath(bobID, id, authcore.SimulateSuccess), "", ""), http.StatusNotFound)
	})
	t.Run("an unknown challenge", func(t *testing.T) {
		wantMessage(t, sandbox.post(t, simulatePath(aliceID, "999999999", authcore.SimulateSuccess), "", ""), http.StatusNotFound)
	})
	t.Run("an unknown outcome", func(t *testing.T) {
		wantMessage(t, sandbox.post(t, simulatePath(aliceID, id, "verify_maybe"), "", ""), http.StatusNotFound)
	})
	t.Run("GET", func(t *testing.T) {
		r := sandbox.get(t, simulatePath(aliceID, id, authcore.SimulateSuccess), "")
		wantMessage(t, r, http.StatusMethodNotAllowed)
		if r.header.Get("Allow") != "POST" {
			t.Fatalf("Allow %q", r.header.Get("Allow"))
		}
	})
	if got := sandbox.pushStatus(t, tok, id); got != authcore.PushPending {
		t.Fatalf("push status %s", got)
	}
	sandbox.wantStatus(t, tok, "STANDARD")

	t.Run("outside sandbox mode", func(t *testing.T) {
		f := newStepUpFixture(t, stepUpConfig{})
		tok := f.login(t, aliceEmail)
		id := f.issuePush(t, tok)
		for _, outcome := range []string{authcore.SimulateSuccess, authcore.SimulateInvalid, authcore.SimulateExpired} {
			wantMessage(t, f.post(t, simulatePath(aliceID, id, outcome), "", ""), http.StatusNotFound)
		}
		if got := f.pushStatus(t, tok, id); got != authcore.PushPending {
			t.Fatalf("push status %s", got)
		}
		f.wantStatus(t, tok, "STANDARD")
	})
}

// Authentication factors.

func (f *stepUpFixture) factors(t *testing.T, token string) string {
	t.Helper()
	r := f.get(t, "/authentication_factors", token)
	if r.status != http.StatusOK {
		t.Fatalf("factors: %d %s", r.status, r.raw)
	}
	return string(r.raw)
}

func TestFactorsListsTheEnrolledChannels(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	for email, want := range map[string]string{
		aliceEmail: `{"factors":[{"type":"OTP","status":"ACTIVE","channel":"SMS"},{"type":"PUSH","status":"ACTIVE","channel":"AUTHY"}]}`,
		bobEmail:   `{"factors":[]}`,
	} {
		if got := f.factors(t, f.login(t, email)); got != want {
			t.Errorf("%s: %s, want %s", email, got, want)
		}
	}
	wantMessage(t, f.get(t, "/authentication_factors", ""), http.StatusUnauthorized)
}

func TestFactorsOTPEnrolmentActivatesTheFactorAndStepsUp(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, bobEmail)
	wantErrorCode(t, f.post(t, "/authentication_factors/otp/SMS/verify", tok, `{"verificationCode":"123456"}`),
		http.StatusConflict, authcore.CodeStateInvalid) // not started

	wantNoContent(t, f.post(t, "/authentication_factors/otp/SMS", tok, ""))
	msg := f.otp.last(t)
	if msg.To != "+35699000002" || msg.Channel != "SMS" || msg.Purpose != authcore.PurposeEnrolment || !digits.MatchString(msg.Code) {
		t.Fatalf("sent %+v", msg)
	}
	if got := f.factors(t, tok); got != `{"factors":[{"type":"OTP","status":"PENDING_VERIFICATION","channel":"SMS"}]}` {
		t.Fatalf("factors %s", got)
	}
	// Until verified, the pending factor does not serve step-up, and a
	// wrong enrolment code is refused.
	wantErrorCode(t, f.verifyCode(t, tok, msg.Code), http.StatusConflict, authcore.CodeChannelNotRegistered)
	wantErrorCode(t, f.post(t, "/authentication_factors/otp/SMS/verify", tok, `{"verificationCode":"`+wrongCode(msg.Code)+`"}`),
		http.StatusConflict, authcore.CodeVerificationCodeInvalid)
	f.wantStatus(t, tok, "STANDARD")

	wantNoContent(t, f.post(t, "/authentication_factors/otp/SMS/verify", tok, `{"verificationCode":"`+msg.Code+`"}`))
	if got := f.factors(t, tok); got != `{"factors":[{"type":"OTP","status":"ACTIVE","channel":"SMS"}]}` {
		t.Fatalf("factors after verify %s", got)
	}
	f.wantStatus(t, tok, "STEPPED_UP")

	wantErrorCode(t, f.post(t, "/authentication_factors/otp/SMS", tok, ""), http.StatusConflict, authcore.CodeChannelAlreadyRegistered)
	wantErrorCode(t, f.post(t, "/authentication_factors/otp/SMS/verify", tok, `{"verificationCode":"`+msg.Code+`"}`),
		http.StatusConflict, authcore.CodeChannelAlreadyRegistered)

	// The new factor serves step-up in a new session.
	other := f.login(t, bobEmail)
	f.wantStatus(t, other, "STANDARD")
	f.stepUp(t, other)
	f.wantStatus(t, other, "STEPPED_UP")
}

func TestFactorsOTPEnrolmentRefusals(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	for _, tc := range []struct {
		name, email, path string
		status            int
		code              string
	}{
		{"already enrolled", aliceEmail, "/authentication_factors/otp/SMS", 409, authcore.CodeChannelAlreadyRegistered},
		{"already enrolled, verify", aliceEmail, "/authentication_factors/otp/SMS/verify", 409, authcore.CodeChannelAlreadyRegistered},
		{"no mobile number", daveEmail, "/authentication_factors/otp/SMS", 409, authcore.CodeMobileNumberNotAvailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErrorCode(t, f.post(t, tc.path, f.login(t, tc.email), `{"verificationCode":"123456"}`), tc.status, tc.code)
		})
	}
	t.Run("EMAIL channel", func(t *testing.T) {
		wantInvalid(t, f.post(t, "/authentication_factors/otp/EMAIL", f.login(t, bobEmail), ""), "channel", "IN", "SMS")
	})
	t.Run("missing verificationCode", func(t *testing.T) {
		wantInvalid(t, f.post(t, "/authentication_factors/otp/SMS/verify", f.login(t, bobEmail), `{}`), "verificationCode", "REQUIRED")
	})
	t.Run("no bearer token", func(t *testing.T) {
		wantMessage(t, f.post(t, "/authentication_factors/otp/SMS", "", ""), http.StatusUnauthorized)
		wantMessage(t, f.post(t, "/authentication_factors/otp/SMS/verify", "", `{"verificationCode":"123456"}`), http.StatusUnauthorized)
	})
	t.Run("re-sending the enrolment code too soon", func(t *testing.T) {
		tok := f.login(t, bobEmail)
		wantNoContent(t, f.post(t, "/authentication_factors/otp/SMS", tok, ""))
		wantErrorCode(t, f.post(t, "/authentication_factors/otp/SMS", tok, ""), http.StatusConflict, authcore.CodeRetryIn15Sec)
	})
	if f.otp.count() != 1 {
		t.Fatalf("%d codes sent, want 1", f.otp.count())
	}
}

func TestFactorsPushEnrolmentNeedsAStepUpAndCanBeRemoved(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	const path = "/authentication_factors/push/BIOMETRIC"
	wantErrorCode(t, f.post(t, path, tok, ""), http.StatusForbidden, "STEP_UP_REQUIRED")

	f.stepUp(t, tok)
	wantNoContent(t, f.post(t, path, tok, ""))
	wantErrorCode(t, f.post(t, path, tok, ""), http.StatusConflict, authcore.CodeChannelAlreadyRegistered)
	if got := f.factors(t, tok); got != `{"factors":[{"type":"OTP","status":"ACTIVE","channel":"SMS"},{"type":"PUSH","status":"ACTIVE","channel":"AUTHY"},{"type":"PUSH","status":"ACTIVE","channel":"BIOMETRIC"}]}` {
		t.Fatalf("factors %s", got)
	}
	// Step-up is per session: another session must step up too.
	wantErrorCode(t, f.post(t, "/authentication_factors/push/AUTHY", f.login(t, aliceEmail), ""), http.StatusForbidden, "STEP_UP_REQUIRED")
	// The new channel serves push step-up.
	other := f.login(t, aliceEmail)
	if r := f.post(t, "/stepup/challenges/push/BIOMETRIC", other, ""); r.status != http.StatusOK {
		t.Fatalf("push on the new channel: %d %s", r.status, r.raw)
	}

	wantNoContent(t, f.delete(t, path, tok))
	wantErrorCode(t, f.delete(t, path, tok), http.StatusConflict, authcore.CodeChannelNotRegistered)
	// Removing a configured channel works too, and it no longer serves.
	wantNoContent(t, f.delete(t, "/authentication_factors/push/AUTHY", tok))
	if got := f.factors(t, tok); got != `{"factors":[{"type":"OTP","status":"ACTIVE","channel":"SMS"}]}` {
		t.Fatalf("factors after removal %s", got)
	}
	wantErrorCode(t, f.post(t, "/stepup/challenges/push/AUTHY", other, ""), http.StatusConflict, authcore.CodeChannelNotRegistered)
	// And it can be enrolled again.
	wantNoContent(t, f.post(t, "/authentication_factors/push/AUTHY", tok, ""))
}

func TestFactorsPushEnrolmentAfterOTPEnrolment(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, bobEmail)
	wantErrorCode(t, f.post(t, "/authentication_factors/push/AUTHY", tok, ""), http.StatusForbidden, "STEP_UP_REQUIRED")
	wantNoContent(t, f.post(t, "/authentication_factors/otp/SMS", tok, ""))
	wantNoContent(t, f.post(t, "/authentication_factors/otp/SMS/verify", tok, `{"verificationCode":"`+f.otp.last(t).Code+`"}`))
	wantNoContent(t, f.post(t, "/authentication_factors/push/AUTHY", tok, ""))
	wantErrorCode(t, f.post(t, "/authentication_factors/push/AUTHY", tok, ""), http.StatusConflict, authcore.CodeChannelAlreadyRegistered)
	if got := f.factors(t, tok); got != `{"factors":[{"type":"OTP","status":"ACTIVE","channel":"SMS"},{"type":"PUSH","status":"ACTIVE","channel":"AUTHY"}]}` {
		t.Fatalf("factors %s", got)
	}
}

func TestFactorsPushRefusals(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	bob := f.login(t, bobEmail)
	t.Run("removing a channel that is not enrolled", func(t *testing.T) {
		wantErrorCode(t, f.delete(t, "/authentication_factors/push/AUTHY", bob), http.StatusConflict, authcore.CodeChannelNotRegistered)
	})
	t.Run("SMS is not a push channel", func(t *testing.T) {
		wantInvalid(t, f.post(t, "/authentication_factors/push/SMS", bob, ""), "channel", "IN", "AUTHY", "BIOMETRIC")
		wantInvalid(t, f.delete(t, "/authentication_factors/push/SMS", bob), "channel", "IN", "AUTHY", "BIOMETRIC")
	})
	t.Run("no bearer token", func(t *testing.T) {
		wantMessage(t, f.post(t, "/authentication_factors/push/AUTHY", "", ""), http.StatusUnauthorized)
		wantMessage(t, f.delete(t, "/authentication_factors/push/AUTHY", ""), http.StatusUnauthorized)
	})
}

// TestFactorsConcurrentPushEnrolmentsRegisterOnce: of concurrent
// enrolments of one channel, one is 204 and the others
// CHANNEL_ALREADY_REGISTERED; concurrent enrolments of two channels both
// stick. Account reads are slowed down as a Redis round trip would, so the
// requests overlap.
func TestFactorsConcurrentPushEnrolmentsRegisterOnce(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{accountReadLatency: 20 * time.Millisecond})
	tok := f.login(t, aliceEmail)
	f.stepUp(t, tok)
	wantNoContent(t, f.delete(t, "/authentication_factors/push/AUTHY", tok))

	const perChannel = 8
	results := make(chan suResponse, 2*perChannel)
	var wg sync.WaitGroup
	for i := range 2 * perChannel {
		channel := []string{"AUTHY", "BIOMETRIC"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- f.post(t, "/authentication_factors/push/"+channel, tok, "")
		}()
	}
	wg.Wait()
	close(results)
	accepted := 0
	for r := range results {
		if r.status == http.StatusNoContent {
			accepted++
		} else if string(r.raw) != `{"errorCode":"CHANNEL_ALREADY_REGISTERED"}` {
			t.Errorf("concurrent enrolment: %d %s", r.status, r.raw)
		}
	}
	var got struct{ Factors []authcore.FactorStatus }
	if err := json.Unmarshal([]byte(f.factors(t, tok)), &got); err != nil {
		t.Fatal(err)
	}
	var push []string
	for _, fs := range got.Factors {
		if fs.Type == authcore.FactorPush {
			push = append(push, fs.Channel)
		}
	}
	slices.Sort(push)
	if accepted != 2 || !slices.Equal(push, []string{"AUTHY", "BIOMETRIC"}) {
		t.Fatalf("%d enrolments accepted, push factors %v; want 2 accepted and [AUTHY BIOMETRIC]", accepted, push)
	}
}

func TestStepUpCodeRoutesAreRateLimitedPerClientIP(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{rateLimits: map[string]authcore.RateLimit{
		authcore.LimitCodeIssue:  {Limit: 2, Window: time.Minute},
		authcore.LimitCodeVerify: {Limit: 2, Window: time.Minute},
	}})
	want429 := func(t *testing.T, r suResponse, limit string) {
		t.Helper()
		wantMessage(t, r, http.StatusTooManyRequests)
		reset, err := strconv.Atoi(r.header.Get("x-ratelimit-reset"))
		if r.header.Get("x-ratelimit-limit") != limit || err != nil || reset < 1 || reset > 60 ||
			r.header.Get("Retry-After") != r.header.Get("x-ratelimit-reset") {
			t.Fatalf("429 headers %v", r.header)
		}
	}
	alice := f.login(t, aliceEmail)
	code := f.issueCode(t, alice) // code_issue 1
	f.issuePush(t, alice)         // code_issue 2
	want429(t, f.post(t, "/stepup/challenges/otp/SMS", alice, ""), "2")
	want429(t, f.post(t, "/authentication_factors/otp/SMS", f.login(t, bobEmail), ""), "2")

	wantErrorCode(t, f.verifyCode(t, alice, wrongCode(code)), http.StatusConflict, authcore.CodeVerificationCodeInvalid)
	wantErrorCode(t, f.verifyCode(t, alice, wrongCode(code)), http.StatusConflict, authcore.CodeVerificationCodeInvalid)
	want429(t, f.verifyCode(t, alice, code), "2")
	want429(t, f.post(t, "/authentication_factors/otp/SMS/verify", alice, `{"verificationCode":"123456"}`), "2")
	f.wantStatus(t, alice, "STANDARD")
	if f.otp.count() != 1 {
		t.Fatalf("%d codes sent, want 1", f.otp.count())
	}
}

func TestStepUpWithoutASenderIs503(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{senders: "none"})
	tok := f.login(t, aliceEmail)
	wantMessage(t, f.post(t, "/stepup/challenges/otp/SMS", tok, ""), http.StatusServiceUnavailable)
	wantMessage(t, f.post(t, "/stepup/challenges/push/AUTHY", tok, ""), http.StatusServiceUnavailable)
	wantMessage(t, f.post(t, "/authentication_factors/otp/SMS", f.login(t, bobEmail), ""), http.StatusServiceUnavailable)
	if logs := f.logs.String(); !strings.Contains(logs, `"msg":"no sender configured"`) {
		t.Fatalf("no error logged:\n%s", logs)
	}
	// Sandbox mode needs none.
	sb := newStepUpFixture(t, stepUpConfig{senders: "none", sandbox: true})
	sbTok := sb.login(t, aliceEmail)
	wantNoContent(t, sb.post(t, "/stepup/challenges/otp/SMS", sbTok, ""))
	sb.issuePush(t, sbTok)
}

func TestStepUpWhenTheSenderFailsIs503AndLogsNoCode(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{senders: "failing"})
	tok := f.login(t, aliceEmail)
	for _, path := range []string{"/stepup/challenges/otp/SMS", "/stepup/challenges/push/AUTHY"} {
		r := f.post(t, path, tok, "")
		wantMessage(t, r, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") != "15" {
			t.Fatalf("%s: Retry-After %q", path, r.header.Get("Retry-After"))
		}
	}
	if f.otp.count() != 1 || f.push.count() != 1 {
		t.Fatalf("%d codes and %d pushes attempted, want 1 and 1", f.otp.count(), f.push.count())
	}
	if logs := f.logs.String(); strings.Count(logs, `"msg":"sending failed"`) != 2 {
		t.Fatalf("want two failures logged:\n%s", logs)
	}
	// The cleanup checks that the undelivered code is not in the logs.
}

func TestPushResolveWithoutAPushSecretIsAlways401(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{noPushSecret: true})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	body := `{"status":"VERIFIED"}`
	for name, sig := range map[string]string{
		"no signature":                  "",
		"signed with the empty secret":  authcore.SignHMAC([]byte(body), nil),
		"signed with the usual secret":  f.sign(body),
		"signed with an empty []byte{}": authcore.SignHMAC([]byte(body), []byte{}),
	} {
		t.Run(name, func(t *testing.T) {
			wantMessage(t, f.resolve(t, "AUTHY", id, body, sig), http.StatusUnauthorized)
		})
	}
	if got := f.pushStatus(t, tok, id); got != authcore.PushPending {
		t.Fatalf("push status %s", got)
	}
}

func TestPushResolveRefusesAnOversizedBody(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	id := f.issuePush(t, tok)
	body := `{"status":"VERIFIED","pad":"` + strings.Repeat("x", multiapi.MaxBodyBytes) + `"}`
	wantMessage(t, f.resolve(t, "AUTHY", id, body, f.sign(body)), http.StatusRequestEntityTooLarge)
	if got := f.pushStatus(t, tok, id); got != authcore.PushPending {
		t.Fatalf("push status %s", got)
	}
}

func TestStepUpRoutesAnswerOtherMethodsWith405JSON(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{sandbox: true})
	tok := f.login(t, aliceEmail)
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/stepup/challenges/otp/SMS", "POST"},
		{"PUT", "/stepup/challenges/otp/SMS/verify", "POST"},
		{"GET", "/stepup/challenges/push/AUTHY", "POST"},
		{"DELETE", "/stepup/challenges/push/AUTHY/123", "GET"},
		{"GET", "/stepup/challenges/push/AUTHY/123/resolve", "POST"},
		{"POST", "/authentication_factors", "GET"},
		{"DELETE", "/authentication_factors/otp/SMS", "POST"},
		{"GET", "/authentication_factors/otp/SMS/verify", "POST"},
		{"GET", "/authentication_factors/push/AUTHY", "POST, DELETE"},
		{"PATCH", "/authentication_factors/push/AUTHY", "POST, DELETE"},
		{"PUT", simulatePath(aliceID, "123", authcore.SimulateInvalid), "POST"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := f.send(t, suRequest{method: tc.method, path: tc.path, token: tok})
			wantMessage(t, r, http.StatusMethodNotAllowed)
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

func TestEveryAuthenticatedStepUpRouteIs401WithoutAToken(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{})
	tok := f.login(t, aliceEmail)
	if r := f.post(t, "/logout", tok, ""); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d", r.status)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/stepup/challenges/otp/SMS", ""},
		{"POST", "/stepup/challenges/otp/SMS/verify", `{"verificationCode":"123456"}`},
		{"POST", "/stepup/challenges/push/AUTHY", ""},
		{"GET", "/stepup/challenges/push/AUTHY/123", ""},
		{"GET", "/authentication_factors", ""},
		{"POST", "/authentication_factors/otp/SMS", ""},
		{"POST", "/authentication_factors/otp/SMS/verify", `{"verificationCode":"123456"}`},
		{"POST", "/authentication_factors/push/AUTHY", ""},
		{"DELETE", "/authentication_factors/push/AUTHY", ""},
	} {
		for name, token := range map[string]string{"no token": "", "forged token": "x.y.z", "logged-out token": tok} {
			t.Run(c.method+" "+c.path+" "+name, func(t *testing.T) {
				wantMessage(t, f.send(t, suRequest{method: c.method, path: c.path, token: token, body: c.body}), http.StatusUnauthorized)
			})
		}
	}
	if f.otp.count()+f.push.count() != 0 {
		t.Fatal("an unauthenticated request sent something")
	}
}

// TestStepUpFlowsLogNoSecret runs every flow once and checks the audit
// lines they must leave, so that the leak check every fixture makes at the
// end of its test is not vacuous.
func TestStepUpFlowsLogNoSecret(t *testing.T) {
	f := newStepUpFixture(t, stepUpConfig{apiKeys: []string{"multi-api-key-secret"}})
	alice := f.login(t, aliceEmail)
	f.post(t, "/login_with_password", "", `{"email":"alice@example.com","password":{"value":"Wrong-`+stepUpPassword+`"}}`)
	code := f.issueCode(t, alice)
	f.verifyCode(t, alice, wrongCode(code))
	wantNoContent(t, f.verifyCode(t, alice, code))
	f.verifyCode(t, alice, code) // ALREADY_VERIFIED

	other := f.login(t, aliceEmail)
	id := f.issuePush(t, other)
	f.resolve(t, "AUTHY", id, `{"status":"VERIFIED"}`, "forged")
	wantNoContent(t, f.resolveSigned(t, id, authcore.PushVerified))

	bob := f.login(t, bobEmail)
	wantNoContent(t, f.post(t, "/authentication_factors/otp/SMS", bob, ""))
	wantNoContent(t, f.post(t, "/authentication_factors/otp/SMS/verify", bob, `{"verificationCode":"`+f.otp.last(t).Code+`"}`))
	wantNoContent(t, f.post(t, "/authentication_factors/push/AUTHY", bob, ""))
	wantNoContent(t, f.delete(t, "/authentication_factors/push/AUTHY", bob))
	f.post(t, "/logout", bob, "")

	sandbox := newStepUpFixture(t, stepUpConfig{sandbox: true})
	sandbox.remember(authcore.SandboxCode)
	st := sandbox.login(t, aliceEmail)
	wantNoContent(t, sandbox.post(t, "/stepup/challenges/otp/SMS", st, ""))
	wantNoContent(t, sandbox.verifyCode(t, st, authcore.SandboxCode))
	sid := sandbox.issuePush(t, sandbox.login(t, aliceEmail))
	sandbox.post(t, simulatePath(aliceID, sid, authcore.SimulateSuccess), "", "")

	logs := f.logs.String() + sandbox.logs.String()
	for _, want := range []string{
		`"msg":"stepup"`, `"method":"otp"`, `"method":"push"`, `"result":"success"`,
		`"result":"VERIFICATION_CODE_INVALID"`, `"result":"ALREADY_VERIFIED"`,
		`"msg":"factor enrolled"`, `"msg":"factor removed"`, `"msg":"login"`, `"msg":"logout"`,
		`"credentials_id":"1001"`, `"credentials_id":"1002"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %s:\n%s", want, logs)
		}
	}
	// The fixtures' cleanups check every code, token, signature, password,
	// api-key and the push secret against these logs.
}
