package sender

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/authgate/authgate/authcore"
)

// Delivery defaults of the HTTP senders (webhook and Twilio). Three tries
// 200 ms and 400 ms apart ride out a provider's brief hiccup, while the
// per-attempt timeout keeps a dead provider from holding a user's request
// open for long.
const (
	DefaultAttempts = 3
	DefaultBackoff  = 200 * time.Millisecond
	DefaultTimeout  = 5 * time.Second
)

// Webhook hands messages to an operator's own service, which then sends
// the SMS, email or push however it likes. Requests are signed so that the
// receiver can reject anything that did not come from authgate. Send is
// safe for concurrent use as long as the fields are not changed meanwhile.
type Webhook struct {
	// URL receives the POST.
	URL string
	// Secret keys the `signature` header; the receiver must know it too.
	Secret []byte
	// Client is used when set (tests, proxies, custom TLS); otherwise
	// http.DefaultClient, which is safe because every attempt has its own
	// timeout.
	Client *http.Client
	// Attempts, Backoff and Timeout tune the delivery; zero means the
	// Default* value. Backoff doubles after each failed attempt.
	Attempts int
	Backoff  time.Duration
	Timeout  time.Duration
}

var _ authcore.Sender = (*Webhook)(nil)

// NewWebhook returns a webhook sender with the default delivery policy. It
// copies secret so that later changes to the caller's slice cannot change
// what requests are signed with.
func NewWebhook(url string, secret []byte) *Webhook {
	return &Webhook{URL: url, Secret: append([]byte(nil), secret...)}
}

// webhookPayload is the documented body. ExpiresAt is a string so that a
// zero time is left out instead of being sent as year 1.
type webhookPayload struct {
	To          string `json:"to"`
	Code        string `json:"code,omitempty"`
	Channel     string `json:"channel"`
	Purpose     string `json:"purpose"`
	ExpiresAt   string `json:"expiresAt,omitempty"`
	ChallengeID string `json:"challengeId,omitempty"`
}

// Send POSTs the message as JSON, signed with the `signature` header
// (base64 HMAC-SHA256 of the exact body). It retries on 5xx and transport
// errors: the receiver sees the same body and code again, so a duplicate
// delivery is harmless, whereas a lost one locks the user out.
func (w *Webhook) Send(ctx context.Context, m authcore.Message) error {
	if w.URL == "" {
		return errors.New("webhook: no url configured")
	}
	if len(w.Secret) == 0 {
		// An unsigned webhook would let anyone who finds the URL inject
		// messages into the receiver; refuse rather than send one.
		return errors.New("webhook: no hmac secret configured")
	}
	p := webhookPayload{
		To:          m.To,
		Code:        m.Code,
		Channel:     m.Channel,
		Purpose:     m.Purpose,
		ChallengeID: m.ChallengeID,
	}
	if !m.ExpiresAt.IsZero() {
		p.ExpiresAt = m.ExpiresAt.UTC().Format(time.RFC3339)
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("webhook: encoding body: %w", err)
	}
	signature := authcore.SignHMAC(body, w.Secret)

	newRequest := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("invalid url: %w", withoutURL(err))
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Signature", signature)
		return req, nil
	}
	pol := newRetryPolicy(w.Attempts, w.Backoff, w.Timeout)
	if err := postWithRetry(ctx, w.Client, pol, newRequest, nil); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return nil
}

// StatusError is a provider's non-2xx answer. It carries the status so
// callers can tell a misconfiguration (4xx) from an outage (5xx), and never
// the response body, which a receiver might fill with our own request,
// code included.
type StatusError struct {
	StatusCode int
	// Detail is a provider's own error code when one is known to be safe
	// to log (Twilio's numeric codes), else empty.
	Detail string
}

// Error names the status (and Detail) only, so it is safe to log.
func (e *StatusError) Error() string {
	s := "unexpected status " + strconv.Itoa(e.StatusCode)
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// retryPolicy is the delivery policy shared by the HTTP senders.
type retryPolicy struct {
	attempts int
	backoff  time.Duration
	timeout  time.Duration
}

func newRetryPolicy(attempts int, backoff, timeout time.Duration) retryPolicy {
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return retryPolicy{attempts: attempts, backoff: backoff, timeout: timeout}
}

// postWithRetry is the one retry loop of the HTTP senders. newRequest is
// called once per attempt because a request body can be read only once;
// explain, when set, turns an error response body into a StatusError
// Detail. A 2xx is success, a 4xx or other non-5xx answer fails at once
// (asking again would get the same answer), and 5xx and transport errors
// are retried until the attempts run out or ctx ends.
func postWithRetry(ctx context.Context, client *http.Client, p retryPolicy,
	newRequest func(context.Context) (*http.Request, error), explain func([]byte) string) error {
	if client == nil {
		client = http.DefaultClient
	}
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("canceled before attempt %d: %w", attempt, err)
		}
		retry, err := postOnce(ctx, client, p.timeout, newRequest, explain)
		if err == nil {
			return nil
		}
		if !retry {
			var se *StatusError
			if errors.As(err, &se) {
				return fmt.Errorf("%w, not retried", err)
			}
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("canceled during attempt %d: %w", attempt, ctx.Err())
		}
		if attempt >= p.attempts {
			return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
		}
		t := time.NewTimer(p.backoff << (attempt - 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("canceled before attempt %d (last: %w): %w", attempt+1, err, ctx.Err())
		case <-t.C:
		}
	}
}

// postOnce makes one attempt under its own timeout and reports whether a
// failure is worth retrying.
func postOnce(ctx context.Context, client *http.Client, timeout time.Duration,
	newRequest func(context.Context) (*http.Request, error), explain func([]byte) string) (retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := newRequest(actx)
	if err != nil {
		return false, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if actx.Err() != nil && ctx.Err() == nil {
			return true, fmt.Errorf("no answer within %v: %w", timeout, actx.Err())
		}
		return true, withoutURL(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return false, nil
	}
	se := &StatusError{StatusCode: resp.StatusCode}
	if explain != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
		se.Detail = explain(b)
	}
	return resp.StatusCode >= 500, se
}

// withoutURL drops the URL that net/http puts into its errors: operators
// sometimes put access tokens into webhook query strings, and errors are
// logged.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
