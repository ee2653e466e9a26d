package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/authcore"
)

// DefaultTwilioBaseURL is Twilio's production API; tests point BaseURL at
// a local stand-in instead.
const DefaultTwilioBaseURL = "https://api.twilio.com"

// Twilio sends codes by SMS through Twilio's Messages API, for operators
// who want SMS without running a webhook receiver of their own. Send is
// safe for concurrent use as long as the fields are not changed meanwhile.
type Twilio struct {
	// AccountSID and AuthToken are the account's API credentials, sent as
	// HTTP Basic auth.
	AccountSID string
	AuthToken  string
	// From is the sending number (E.164) or messaging service sender id.
	From string
	// BaseURL defaults to DefaultTwilioBaseURL.
	BaseURL string
	// Client is used when set; otherwise http.DefaultClient, which is safe
	// because every attempt has its own timeout.
	Client *http.Client
	// Attempts, Backoff and Timeout tune the delivery as for Webhook; zero
	// means the Default* value.
	Attempts int
	Backoff  time.Duration
	Timeout  time.Duration
}

var _ authcore.Sender = (*Twilio)(nil)

// NewTwilio returns a Twilio sender with the production base URL and the
// default delivery policy, matching the `twilio <account> <token> <from>`
// directive.
func NewTwilio(accountSID, authToken, from string) *Twilio {
	return &Twilio{AccountSID: accountSID, AuthToken: authToken, From: from}
}

// Send texts the code to m.To. Twilio answers 201 on success. A 5xx is
// retried even though Twilio may already have queued the SMS, because a
// second copy of the same code is harmless and a missing one is not.
func (t *Twilio) Send(ctx context.Context, m authcore.Message) error {
	if t.AccountSID == "" || t.AuthToken == "" || t.From == "" {
		return errors.New("twilio: account sid, auth token and from number are all required")
	}
	if m.Code == "" {
		// Twilio carries codes only; a push has nothing to text.
		return errors.New("twilio: message has no code to send")
	}
	if m.To == "" {
		return errors.New("twilio: message has no recipient")
	}
	base := t.BaseURL
	if base == "" {
		base = DefaultTwilioBaseURL
	}
	endpoint := strings.TrimRight(base, "/") + "/2010-04-01/Accounts/" + url.PathEscape(t.AccountSID) + "/Messages.json"
	form := url.Values{
		"To":   {m.To},
		"From": {t.From},
		"Body": {codeText(m.Code, m.ExpiresAt, time.Now())},
	}.Encode()

	newRequest := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form))
		if err != nil {
			return nil, fmt.Errorf("invalid base url: %w", withoutURL(err))
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth(t.AccountSID, t.AuthToken)
		return req, nil
	}
	pol := newRetryPolicy(t.Attempts, t.Backoff, t.Timeout)
	if err := postWithRetry(ctx, t.Client, pol, newRequest, twilioErrorCode); err != nil {
		return fmt.Errorf("twilio: %w", err)
	}
	return nil
}

// twilioErrorCode keeps only Twilio's numeric error code (e.g. 21211,
// invalid To number): it is what an operator looks up, and unlike the
// free-text message it cannot echo back anything we sent.
func twilioErrorCode(body []byte) string {
	var e struct {
		Code int `json:"code"`
	}
	if json.Unmarshal(body, &e) != nil || e.Code == 0 {
		return ""
	}
	return "twilio error " + strconv.Itoa(e.Code)
}

// codeText is the SMS and email wording. The minutes are rounded up so a
// code issued for 5m still says 5 minutes when sent a moment later, and
// never drop below 1 so the user is not told the code is already gone.
func codeText(code string, expiresAt, now time.Time) string {
	s := "Your verification code is " + code + "."
	if expiresAt.IsZero() {
		return s
	}
	mins := int(math.Ceil(expiresAt.Sub(now).Minutes()))
	if mins < 1 {
		mins = 1
	}
	unit := "minutes"
	if mins == 1 {
		unit = "minute"
	}
	return fmt.Sprintf("%s It expires in %d %s.", s, mins, unit)
}
