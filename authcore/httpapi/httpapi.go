// Package httpapi holds what authgate's HTTP APIs and its guard share, so
// that each answers the same way: JSON answers, bearer tokens, request
// ids, client addresses, rate-limit headers, route tables that answer
// unknown paths and methods themselves, and the rendering of the guard's
// decisions. The core (authcore) knows nothing of HTTP answers.
package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
)

// WriteJSON sends v as a JSON response that no cache keeps.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"message":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// WriteMessage sends the {"message"} error shape.
func WriteMessage(w http.ResponseWriter, status int, message string) {
	WriteJSON(w, status, struct {
		Message string `json:"message"`
	}{message})
}

// WriteErrorCode sends the {"errorCode"} error shape (409, and 403 on
// guarded use).
func WriteErrorCode(w http.ResponseWriter, status int, code string) {
	WriteJSON(w, status, struct {
		ErrorCode string `json:"errorCode"`
	}{code})
}

// BearerToken returns the token of an "Authorization: Bearer" header.
func BearerToken(header string) (string, bool) {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(header[len(prefix):])
	return tok, tok != ""
}

// RemoteHost returns the host part of r.RemoteAddr.
func RemoteHost(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// NewRequestRef returns a random request id.
func NewRequestRef() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SetRateLimitHeaders sets x-ratelimit-limit, x-ratelimit-reset and
// Retry-After for a 429 of a limit of limit requests that resets in reset,
// and returns the seconds until then, as text.
func SetRateLimitHeaders(h http.Header, limit int, reset time.Duration) string {
	secs := strconv.FormatInt(int64(math.Ceil(reset.Seconds())), 10)
	h.Set("x-ratelimit-limit", strconv.Itoa(limit))
	h.Set("x-ratelimit-reset", secs)
	h.Set("Retry-After", secs)
	return secs
}

// WriteFailure answers an error no route expects, in the {"message"}
// shape: 503 with Retry-After while the store does not answer (told to
// outage, which logs an outage a few lines at a time, unless the client
// went away), else 500, logged with the request's id.
func WriteFailure(w http.ResponseWriter, r *http.Request, err error, outage *authcore.Outage, log *zap.Logger) {
	if errors.Is(err, authcore.ErrUnavailable) {
		if !authcore.ClientGone(err) {
			outage.Refused()
		}
		w.Header().Set("Retry-After", "1")
		WriteMessage(w, http.StatusServiceUnavailable, "service temporarily unavailable")
		return
	}
	log.Error("internal error", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.Error(err))
	WriteMessage(w, http.StatusInternalServerError, "internal error")
}

// Defaults fills in what an API handler's options may leave out: the
// caller's address (the connection's host), request ids (random), the
// audit log (none) and the outage log (one of the handler's own).
func Defaults(clientIP, requestRef *func(*http.Request) string, log **zap.Logger, outage **authcore.Outage) {
	if *clientIP == nil {
		*clientIP = RemoteHost
	}
	if *requestRef == nil {
		*requestRef = func(*http.Request) string { return NewRequestRef() }
	}
	if *log == nil {
		*log = zap.NewNop()
	}
	if *outage == nil {
		*outage = authcore.NewOutage(*log, nil)
	}
}
