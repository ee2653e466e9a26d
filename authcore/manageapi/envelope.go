package manageapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

// MaxBodyBytes is the largest request body the Manage API reads.
const MaxBodyBytes = 64 << 10

// ErrorCode is one of the Manage API's numbered errors and the HTTP
// status it is answered with.
type ErrorCode struct {
	Code   int
	Title  string
	Status int
}

// The numbered errors of SPEC §6, and two for what §8 and §10 require of
// every API but §6 does not number: 429 and 503.
var (
	InvalidRequest            = ErrorCode{1001, "INVALID_REQUEST", http.StatusBadRequest}
	InvalidServiceCredentials = ErrorCode{1002, "INVALID_SERVICE_CREDENTIALS", http.StatusUnauthorized}
	ScopeNotGranted           = ErrorCode{1003, "SCOPE_NOT_GRANTED", http.StatusForbidden}
	InvalidUserCredentials    = ErrorCode{1004, "INVALID_USER_CREDENTIALS", http.StatusUnauthorized}
	AccountLocked             = ErrorCode{1005, "ACCOUNT_LOCKED", http.StatusForbidden}
	InvalidOTP                = ErrorCode{1006, "INVALID_OTP", http.StatusUnauthorized}
	OTPExpired                = ErrorCode{1007, "OTP_EXPIRED", http.StatusUnauthorized}
	OTPAttemptsExceeded       = ErrorCode{1008, "OTP_ATTEMPTS_EXCEEDED", http.StatusForbidden}
	MFASessionInvalid         = ErrorCode{1009, "MFA_SESSION_INVALID", http.StatusUnauthorized}
	RateLimited               = ErrorCode{1010, "RATE_LIMITED", http.StatusTooManyRequests}
	Internal                  = ErrorCode{1500, "INTERNAL", http.StatusInternalServerError}
	ServiceUnavailable        = ErrorCode{1503, "SERVICE_UNAVAILABLE", http.StatusServiceUnavailable}
)

// Unknown routes and methods are invalid requests with their own status.
var (
	notFound         = ErrorCode{InvalidRequest.Code, InvalidRequest.Title, http.StatusNotFound}
	methodNotAllowed = ErrorCode{InvalidRequest.Code, InvalidRequest.Title, http.StatusMethodNotAllowed}
)

// The warnings a success may carry.
var (
	// CodeNotResent: validate/password sent no new code because one went
	// out moments ago; that code is still good.
	CodeNotResent = ErrorCode{Code: 2001, Title: "OTP_NOT_RESENT"}
)

// apiError is one entry of the envelope's errors.
type apiError struct {
	ErrorCode    int    `json:"errorCode"`
	ErrorTitle   string `json:"errorTitle"`
	ErrorMessage string `json:"errorMessage"`
}

// apiWarning is one entry of the envelope's warnings.
type apiWarning struct {
	WarningCode    int    `json:"warningCode"`
	WarningTitle   string `json:"warningTitle"`
	WarningMessage string `json:"warningMessage"`
}

// envelope is what every answer carries; payloads embed it.
type envelope struct {
	Errors       []apiError   `json:"errors"`
	Warnings     []apiWarning `json:"warnings"`
	APIRequestID string       `json:"apiRequestId"`
}

func newEnvelope(ctx context.Context) envelope {
	return envelope{Errors: []apiError{}, Warnings: []apiWarning{}, APIRequestID: authcore.RequestRef(ctx)}
}

func (e *envelope) warn(c ErrorCode, message string) {
	e.Warnings = append(e.Warnings, apiWarning{WarningCode: c.Code, WarningTitle: c.Title, WarningMessage: message})
}

// resultLabel is an error's result label in the metrics: its title in
// lower case, and "unavailable" for a store outage, as in the other
// metrics.
func resultLabel(c ErrorCode) string {
	if c == ServiceUnavailable {
		return "unavailable"
	}
	return strings.ToLower(c.Title)
}

// writeFailure answers the numbered error c in the envelope.
func writeFailure(w http.ResponseWriter, r *http.Request, c ErrorCode, message string) {
	if o, ok := w.(*outcome); ok {
		o.result = resultLabel(c)
	}
	env := newEnvelope(r.Context())
	env.Errors = append(env.Errors, apiError{ErrorCode: c.Code, ErrorTitle: c.Title, ErrorMessage: message})
	httpapi.WriteJSON(w, c.Status, env)
}

// writeError answers an error of the core with its numbered error.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var rl *authcore.RateLimited
	switch {
	case errors.Is(err, authcore.ErrInvalidCredentials):
		writeFailure(w, r, InvalidUserCredentials, "the user name or password is incorrect")
	case errors.Is(err, authcore.ErrLocked):
		writeFailure(w, r, AccountLocked, "the account is temporarily locked after repeated failed logins")
	case errors.Is(err, authcore.ErrInvalidOTP):
		writeFailure(w, r, InvalidOTP, "the one-time code is incorrect")
	case errors.Is(err, authcore.ErrOTPExpired):
		writeFailure(w, r, OTPExpired, "the one-time code has expired")
	case errors.Is(err, authcore.ErrOTPAttemptsExceeded):
		writeFailure(w, r, OTPAttemptsExceeded, "too many one-time code attempts; try again later")
	case errors.Is(err, authcore.ErrMFASessionInvalid):
		writeFailure(w, r, MFASessionInvalid, "the MFA session is missing, expired or already used; validate the password again")
	case errors.Is(err, authcore.ErrCodeField):
		writeFailure(w, r, InvalidRequest, "EMAIL codes go in emailToken, SMS and TOTP codes in token")
	case errors.Is(err, authcore.ErrBadPhoneNumber):
		writeFailure(w, r, InvalidRequest, "phoneNumber must be an E.164 number such as +35699000001")
	case errors.As(err, &rl):
		secs := httpapi.SetRateLimitHeaders(w.Header(), rl.Limit, rl.Reset)
		writeFailure(w, r, RateLimited, "too many requests; retry after "+secs+" seconds")
	case errors.Is(err, authcore.ErrUnavailable):
		// Logged by the outage, a few lines for all of it, not one a request.
		if !authcore.ClientGone(err) {
			h.outage.Refused()
		}
		w.Header().Set("Retry-After", "1")
		writeFailure(w, r, ServiceUnavailable, "service temporarily unavailable")
	case errors.Is(err, authcore.ErrNoSender), errors.Is(err, authcore.ErrSendFailed):
		// The code was not delivered; the sender's error never holds it.
		h.log.Error("sending a code failed", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.Error(err))
		w.Header().Set("Retry-After", "15")
		writeFailure(w, r, ServiceUnavailable, "the code could not be sent; try again later")
	default:
		h.log.Error("internal error", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.Error(err))
		writeFailure(w, r, Internal, "internal error")
	}
}

// decodeBody reads a JSON body into v; an empty body is an error when
// required, else leaves v as it is. On failure it has answered 1001 (413
// for an oversized body) and returns false.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, required bool) bool {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		c := InvalidRequest
		c.Status = http.StatusRequestEntityTooLarge
		writeFailure(w, r, c, fmt.Sprintf("request body is larger than %d bytes", MaxBodyBytes))
		return false
	case err != nil:
		writeFailure(w, r, InvalidRequest, "request body could not be read")
		return false
	case len(data) == 0 && required:
		writeFailure(w, r, InvalidRequest, "request body is required")
		return false
	case len(data) == 0:
		return true
	case !utf8.Valid(data):
		writeFailure(w, r, InvalidRequest, "request body is not valid UTF-8")
		return false
	}
	if err := json.Unmarshal(data, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			writeFailure(w, r, InvalidRequest, typeErr.Field+" has the wrong type")
			return false
		}
		writeFailure(w, r, InvalidRequest, "request body is not valid JSON")
		return false
	}
	return true
}

// field checks a string field: present (when required) and at most max
// bytes. On failure it has answered 1001 naming the field.
func field(w http.ResponseWriter, r *http.Request, name string, v *string, required bool, max int) (string, bool) {
	switch {
	case v == nil || *v == "":
		if required {
			writeFailure(w, r, InvalidRequest, name+" is required")
			return "", false
		}
		return "", true
	case len(*v) > max:
		writeFailure(w, r, InvalidRequest, fmt.Sprintf("%s is longer than %d bytes", name, max))
		return "", false
	}
	return *v, true
}

// ProtobufType is the media type of protobuf answers.
const ProtobufType = "application/x-protobuf"

// wantsProtobuf reports whether the Accept header asks for protobuf (with
// a q above zero).
func wantsProtobuf(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != ProtobufType {
				continue
			}
			if q, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}

// writeProtobuf answers 200 with m as protobuf.
func writeProtobuf(w http.ResponseWriter, r *http.Request, m proto.Message) {
	data, err := proto.Marshal(m)
	if err != nil {
		writeFailure(w, r, Internal, "internal error")
		return
	}
	w.Header().Set("Content-Type", ProtobufType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
}
