package sender

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authgate/authgate/authcore"
)

const (
	testAccount = "AC0123456789abcdef"
	testToken   = "twilio-auth-token-s3cr3t"
	testFrom    = "+15005550006"
)

type twilioRequest struct {
	method, path, contentType string
	user, pass                string
	basicOK                   bool
	form                      url.Values
}

// twilioStandIn answers like Twilio's Messages API: each call takes the
// next status of statuses (the last one repeats) and the matching body.
func twilioStandIn(t *testing.T, statuses []int, body string) (*httptest.Server, <-chan twilioRequest, *atomic.Int32) {
	t.Helper()
	reqs := make(chan twilioRequest, 16)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		user, pass, ok := r.BasicAuth()
		_ = r.ParseForm()
		reqs <- twilioRequest{r.Method, r.URL.Path, r.Header.Get("Content-Type"), user, pass, ok, r.PostForm}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(statuses[min(i, len(statuses)-1)])
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, reqs, &n
}

func fastTwilio(baseURL string) *Twilio {
	tw := NewTwilio(testAccount, testToken, testFrom)
	tw.BaseURL = baseURL
	tw.Backoff = time.Millisecond
	tw.Timeout = 30 * time.Second // bounds a hang; a loaded machine may be slow to serve
	return tw
}

func TestTwilioSendsTheCodeThroughTheMessagesAPI(t *testing.T) {
	srv, reqs, _ := twilioStandIn(t, []int{http.StatusCreated}, `{"sid":"SM1","status":"queued"}`)

	for _, base := range []string{srv.URL, srv.URL + "/"} {
		msg := authcore.Message{To: "+447700900123", Code: testCode, Channel: "SMS", Purpose: "stepup",
			ExpiresAt: time.Now().Add(5 * time.Minute)}
		if err := fastTwilio(base).Send(context.Background(), msg); err != nil {
			t.Fatalf("Send with base %q: %v", base, err)
		}
		got := <-reqs
		if got.method != http.MethodPost {
			t.Errorf("method = %s, want POST", got.method)
		}
		if want := "/2010-04-01/Accounts/" + testAccount + "/Messages.json"; got.path != want {
			t.Errorf("path = %q, want %q", got.path, want)
		}
		if got.contentType != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type = %q, want form encoding", got.contentType)
		}
		if !got.basicOK || got.user != testAccount || got.pass != testToken {
			t.Errorf("basic auth = %q:%q (ok %v), want account sid and auth token", got.user, got.pass, got.basicOK)
		}
		if got.form.Get("To") != "+447700900123" || got.form.Get("From") != testFrom {
			t.Errorf("To/From = %q/%q", got.form.Get("To"), got.form.Get("From"))
		}
		if want := "Your verification code is " + testCode + ". It expires in 5 minutes."; got.form.Get("Body") != want {
			t.Errorf("Body = %q, want %q", got.form.Get("Body"), want)
		}
	}
}

func TestTwilioRetryPolicy(t *testing.T) {
	tests := []struct {
		name         string
		statuses     []int
		body         string
		wantErr      []string // substrings of the error; nil means success
		wantRequests int32
	}{
		{name: "succeeds after two 503s", statuses: []int{503, 503, 201}, body: `{}`, wantRequests: 3},
		{name: "gives up after three 500s", statuses: []int{500}, body: `{}`,
			wantErr: []string{"twilio: ", "giving up after 3 attempts", "unexpected status 500"}, wantRequests: 3},
		{
			name:     "reports Twilio's error code for a 400 without retrying",
			statuses: []int{400},
			// Twilio's message can quote what we sent; only the code may surface.
			body:         `{"code": 21211, "message": "Invalid 'To' Phone Number: body said ` + testCode + `", "status": 400}`,
			wantErr:      []string{"unexpected status 400", "twilio error 21211", "not retried"},
			wantRequests: 1,
		},
		{name: "bad credentials are not retried", statuses: []int{401}, body: `not json`,
			wantErr: []string{"unexpected status 401"}, wantRequests: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, n := twilioStandIn(t, tt.statuses, tt.body)
			err := fastTwilio(srv.URL).Send(context.Background(),
				authcore.Message{To: "+447700900123", Code: testCode, ExpiresAt: time.Now().Add(time.Minute)})
			if got := n.Load(); got != tt.wantRequests {
				t.Errorf("requests = %d, want %d", got, tt.wantRequests)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %q, want it to contain %q", err, s)
				}
			}
			var se *StatusError
			if !errors.As(err, &se) {
				t.Errorf("err = %v, want a StatusError in the chain", err)
			}
			assertNoSecrets(t, err, testCode, testToken)
		})
	}
}

func TestTwilioRefusesMessagesItCannotSend(t *testing.T) {
	srv, _, n := twilioStandIn(t, []int{201}, `{}`)
	tests := []struct {
		name    string
		twilio  *Twilio
		msg     authcore.Message
		wantErr string
	}{
		{"push has no code", fastTwilio(srv.URL), authcore.Message{To: "cred-1", ChallengeID: "1"}, "no code"},
		{"no recipient", fastTwilio(srv.URL), authcore.Message{Code: testCode}, "no recipient"},
		{"no credentials", &Twilio{BaseURL: srv.URL, From: testFrom}, authcore.Message{To: "+1555", Code: testCode}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.twilio.Send(context.Background(), tt.msg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	if got := n.Load(); got != 0 {
		t.Errorf("requests = %d, want 0", got)
	}
}

func TestTwilioDefaultsToTheProductionAPI(t *testing.T) {
	var seen string
	tw := NewTwilio(testAccount, testToken, testFrom)
	tw.Client = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r.URL.String()
		return &http.Response{StatusCode: 201, Body: http.NoBody, Header: http.Header{}}, nil
	})}
	if err := tw.Send(context.Background(), authcore.Message{To: "+1555", Code: testCode}); err != nil {
		t.Fatal(err)
	}
	if want := "https://api.twilio.com/2010-04-01/Accounts/" + testAccount + "/Messages.json"; seen != want {
		t.Fatalf("called %q, want %q", seen, want)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCodeTextTellsTheUserHowLongTheCodeLasts(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		expiresAt time.Time
		want      string
	}{
		{"five minutes", now.Add(5 * time.Minute), "Your verification code is 123456. It expires in 5 minutes."},
		{"a moment after issue still says five", now.Add(5*time.Minute - 300*time.Millisecond), "Your verification code is 123456. It expires in 5 minutes."},
		{"seconds left round up to one minute", now.Add(20 * time.Second), "Your verification code is 123456. It expires in 1 minute."},
		{"already past still says one minute", now.Add(-time.Minute), "Your verification code is 123456. It expires in 1 minute."},
		{"no expiry says nothing about it", time.Time{}, "Your verification code is 123456."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := codeText("123456", tt.expiresAt, now); got != tt.want {
				t.Fatalf("codeText = %q, want %q", got, tt.want)
			}
		})
	}
}
