package sender

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
)

const (
	testCode   = "654321"
	testSecret = "webhook-hmac-secret"
)

var testExpiry = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fastWebhook keeps retries quick so the tests measure behaviour, not
// sleep. Its timeout only bounds a hang: a tighter one could end an
// attempt that a loaded machine was slow to serve, and the tests that are
// about the timeout set their own.
func fastWebhook(url string) *Webhook {
	w := NewWebhook(url, []byte(testSecret))
	w.Backoff = time.Millisecond
	w.Timeout = 30 * time.Second
	return w
}

// assertNoSecrets checks §9: errors are logged, so they must not carry the
// code or any credential.
func assertNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q reveals secret %q", err, s)
		}
	}
}

type capturedRequest struct {
	method      string
	contentType string
	signature   string
	body        []byte
}

func TestWebhookPostsSignedJSON(t *testing.T) {
	tests := []struct {
		name      string
		msg       authcore.Message
		wantField map[string]any
		absent    []string
	}{
		{
			name: "otp code carries the code and no challenge id",
			msg:  authcore.Message{To: "+447700900123", Code: testCode, Channel: "SMS", Purpose: "stepup", ExpiresAt: testExpiry},
			wantField: map[string]any{
				"to": "+447700900123", "code": testCode, "channel": "SMS", "purpose": "stepup",
				"expiresAt": "2030-01-02T03:04:05Z",
			},
			absent: []string{"challengeId"},
		},
		{
			name: "push carries the challenge id and no code",
			msg:  authcore.Message{To: "cred-42", Channel: "BIOMETRIC", Purpose: "stepup", ChallengeID: "918273", ExpiresAt: testExpiry},
			wantField: map[string]any{
				"to": "cred-42", "channel": "BIOMETRIC", "purpose": "stepup", "challengeId": "918273",
				"expiresAt": "2030-01-02T03:04:05Z",
			},
			absent: []string{"code"},
		},
		{
			name: "expiry in another zone is sent in UTC",
			msg: authcore.Message{To: "a@example.com", Code: testCode, Channel: "EMAIL", Purpose: "login",
				ExpiresAt: testExpiry.In(time.FixedZone("X", 2*3600))},
			wantField: map[string]any{"expiresAt": "2030-01-02T03:04:05Z", "channel": "EMAIL", "purpose": "login"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan capturedRequest, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got <- capturedRequest{r.Method, r.Header.Get("Content-Type"), r.Header.Get("signature"), body}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()

			if err := fastWebhook(srv.URL).Send(context.Background(), tt.msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			req := <-got
			if req.method != http.MethodPost {
				t.Errorf("method = %s, want POST", req.method)
			}
			if req.contentType != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", req.contentType)
			}
			if !authcore.VerifyHMAC(req.body, []byte(testSecret), req.signature) {
				t.Errorf("signature %q does not verify against the body %s", req.signature, req.body)
			}
			var fields map[string]any
			if err := json.Unmarshal(req.body, &fields); err != nil {
				t.Fatalf("body is not JSON: %v: %s", err, req.body)
			}
			for k, want := range tt.wantField {
				if fields[k] != want {
					t.Errorf("%s = %v, want %v", k, fields[k], want)
				}
			}
			for _, k := range tt.absent {
				if _, ok := fields[k]; ok {
					t.Errorf("field %q present, want it left out: %s", k, req.body)
				}
			}
		})
	}
}

func TestWebhookSignatureDoesNotVerifyWithAnotherSecret(t *testing.T) {
	got := make(chan capturedRequest, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- capturedRequest{signature: r.Header.Get("signature"), body: body}
	}))
	defer srv.Close()
	if err := fastWebhook(srv.URL).Send(context.Background(), authcore.Message{To: "x", Code: testCode}); err != nil {
		t.Fatal(err)
	}
	req := <-got
	if authcore.VerifyHMAC(req.body, []byte("another-secret"), req.signature) {
		t.Fatal("signature verified with the wrong secret")
	}
}

func TestWebhookRetryPolicy(t *testing.T) {
	tests := []struct {
		name         string
		attempts     int
		statuses     []int // answered in order; the last one repeats
		wantErr      bool
		wantStatus   int // StatusError expected in the error chain
		wantRequests int32
	}{
		{name: "succeeds on the third try after two 503s", statuses: []int{503, 503, 200}, wantRequests: 3},
		{name: "accepts any 2xx", statuses: []int{202}, wantRequests: 1},
		{name: "does not retry a 400", statuses: []int{400, 200}, wantErr: true, wantStatus: 400, wantRequests: 1},
		{name: "does not retry a 401", statuses: []int{401, 200}, wantErr: true, wantStatus: 401, wantRequests: 1},
		{name: "gives up after the default 3 attempts when every answer is 5xx", statuses: []int{500}, wantErr: true, wantStatus: 500, wantRequests: 3},
		{name: "gives up after the configured attempts", attempts: 5, statuses: []int{502}, wantErr: true, wantStatus: 502, wantRequests: 5},
		{name: "a single attempt means no retry", attempts: 1, statuses: []int{503, 200}, wantErr: true, wantStatus: 503, wantRequests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				w.WriteHeader(tt.statuses[min(i, len(tt.statuses)-1)])
			}))
			defer srv.Close()

			wh := fastWebhook(srv.URL)
			wh.Attempts = tt.attempts
			err := wh.Send(context.Background(), authcore.Message{To: "+15550001", Code: testCode, Channel: "SMS"})

			if got := n.Load(); got != tt.wantRequests {
				t.Errorf("requests = %d, want %d", got, tt.wantRequests)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if err != nil {
				var se *StatusError
				if !errors.As(err, &se) || se.StatusCode != tt.wantStatus {
					t.Errorf("err = %v, want a StatusError with %d", err, tt.wantStatus)
				}
				if !strings.HasPrefix(err.Error(), "webhook: ") {
					t.Errorf("err = %q, want it to name the webhook", err)
				}
				assertNoSecrets(t, err, testCode, testSecret)
			}
		})
	}
}

func TestWebhookWaitsLongerBetweenEachRetry(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	wh := fastWebhook(srv.URL)
	wh.Backoff = 40 * time.Millisecond
	if err := wh.Send(context.Background(), authcore.Message{To: "x", Code: testCode}); err == nil {
		t.Fatal("want an error when every attempt fails")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 3 {
		t.Fatalf("requests = %d, want 3", len(at))
	}
	if first, second := at[1].Sub(at[0]), at[2].Sub(at[1]); first < 40*time.Millisecond || second < 80*time.Millisecond {
		t.Errorf("gaps = %v, %v; want at least 40ms then 80ms", first, second)
	}
}

// flakyTransport fails its first n round trips the way a reset connection
// would, then lets requests through.
type flakyTransport struct {
	failures atomic.Int32
	calls    atomic.Int32
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		return nil, errors.New("connection reset by peer")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestWebhookRetriesTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()

	tests := []struct {
		name     string
		failures int32
		wantErr  bool
	}{
		{"recovers when the third try connects", 2, false},
		{"fails when no try connects", 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := &flakyTransport{}
			ft.failures.Store(tt.failures)
			wh := fastWebhook(srv.URL)
			wh.Client = &http.Client{Transport: ft}
			err := wh.Send(context.Background(), authcore.Message{To: "x", Code: testCode})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if got := ft.calls.Load(); got != 3 {
				t.Errorf("round trips = %d, want 3", got)
			}
			if err != nil && !strings.Contains(err.Error(), "giving up after 3 attempts") {
				t.Errorf("err = %q, want it to say it gave up after 3 attempts", err)
			}
		})
	}
}

// countingTransport counts the round trips it passes on.
type countingTransport struct{ calls atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.calls.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// The attempts are counted as the webhook sends them: the server may not
// even have seen an attempt before the 50ms ran out on a loaded machine.
// The server never answers, so only the timeout can end each attempt.
func TestWebhookGivesUpOnAHangingServerAfterTheTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // runs before srv.Close, which waits for handlers

	wh := fastWebhook(srv.URL)
	ct := &countingTransport{}
	wh.Client = &http.Client{Transport: ct}
	wh.Attempts = 2
	wh.Timeout = 50 * time.Millisecond
	err := wh.Send(context.Background(), authcore.Message{To: "x", Code: testCode})

	if err == nil {
		t.Fatal("want an error from a server that never answers")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Errorf("err = %q, want it to say there was no answer within the timeout", err)
	}
	if got := ct.calls.Load(); got != 2 {
		t.Errorf("requests = %d, want 2", got)
	}
	assertNoSecrets(t, err, testCode, testSecret)
}

func TestWebhookStopsWhenTheContextEnds(t *testing.T) {
	t.Run("cancel during the backoff stops further retries", func(t *testing.T) {
		var n atomic.Int32
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			cancel() // the caller gives up while we wait to retry
		}))
		defer srv.Close()

		wh := fastWebhook(srv.URL)
		wh.Backoff = time.Minute
		start := time.Now()
		err := wh.Send(ctx, authcore.Message{To: "x", Code: testCode})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("Send waited out the backoff instead of stopping")
		}
		if got := n.Load(); got != 1 {
			t.Errorf("requests = %d, want 1", got)
		}
	})

	t.Run("cancel during a request stops without retrying", func(t *testing.T) {
		var n atomic.Int32
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			// The server notices the client hanging up only once the
			// body has been read.
			_, _ = io.Copy(io.Discard, r.Body)
			cancel()
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release) // runs before srv.Close, which waits for handlers

		err := fastWebhook(srv.URL).Send(ctx, authcore.Message{To: "x", Code: testCode})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if got := n.Load(); got != 1 {
			t.Errorf("requests = %d, want 1", got)
		}
	})

	t.Run("an already canceled context sends nothing", func(t *testing.T) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
		defer srv.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()

		err := fastWebhook(srv.URL).Send(ctx, authcore.Message{To: "x", Code: testCode})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if got := n.Load(); got != 0 {
			t.Errorf("requests = %d, want 0", got)
		}
	})
}

func TestWebhookErrorsRevealNoSecrets(t *testing.T) {
	// Port 1 on loopback refuses connections, so every attempt fails in
	// the transport, whose errors would normally quote the URL.
	const urlToken = "query-token-s3cr3t"
	wh := fastWebhook("http://127.0.0.1:1/hook?token=" + urlToken)
	err := wh.Send(context.Background(), authcore.Message{To: "x", Code: testCode})
	if err == nil {
		t.Fatal("want an error from a refused connection")
	}
	assertNoSecrets(t, err, testCode, testSecret, urlToken)
}

func TestWebhookRefusesToSendWithoutConfiguration(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	defer srv.Close()

	tests := []struct {
		name    string
		webhook *Webhook
		wantErr string
	}{
		{"no secret", NewWebhook(srv.URL, nil), "no hmac secret"},
		{"no url", NewWebhook("", []byte(testSecret)), "no url"},
		{"unparseable url", NewWebhook("http://bad host/", []byte(testSecret)), "invalid url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.webhook.Send(context.Background(), authcore.Message{To: "x", Code: testCode})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	if got := n.Load(); got != 0 {
		t.Errorf("requests = %d, want 0", got)
	}
}

func TestNewWebhookCopiesTheSecret(t *testing.T) {
	secret := []byte(testSecret)
	wh := NewWebhook("http://example.invalid", secret)
	secret[0] ^= 0xff
	if string(wh.Secret) != testSecret {
		t.Fatal("changing the caller's slice changed the webhook's secret")
	}
}
