package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/authgate/authgate/authcore"
)

// realm is the Bearer challenge of a request without a usable token.
const realm = `Bearer realm="authgate"`

// GuardStatus is the HTTP status of a guard refusal.
func GuardStatus(r authcore.Refusal) int {
	switch r {
	case authcore.NotRefused:
		return http.StatusOK
	case authcore.RefusedNoToken, authcore.RefusedInvalidToken, authcore.RefusedPasswordUpdateToken:
		return http.StatusUnauthorized
	case authcore.RefusedAccessTokenRequired, authcore.RefusedInsufficientPermissions, authcore.RefusedStepUpRequired:
		return http.StatusForbidden
	case authcore.RefusedUnavailable, authcore.RefusedClientGone:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// GuardChallenge is the WWW-Authenticate value of a guard refusal (RFC
// 6750, and RFC 9470 for a step-up), "" when it has none.
func GuardChallenge(d *authcore.Decision) string {
	switch d.Refusal {
	case authcore.RefusedNoToken:
		return realm
	case authcore.RefusedInvalidToken, authcore.RefusedPasswordUpdateToken:
		return realm + `, error="invalid_token"`
	case authcore.RefusedStepUpRequired:
		ch := `Bearer error="insufficient_user_authentication", error_description="a stepped-up session is required"`
		if d.MaxAge > 0 {
			ch = `Bearer error="insufficient_user_authentication", error_description="a step-up within the last ` +
				d.MaxAge.String() + ` is required", max_age=` + strconv.FormatInt(int64(d.MaxAge/time.Second), 10)
		}
		if d.PhishingResistant {
			ch += `, acr_values="phr"`
		}
		return ch
	}
	return ""
}

// guardErrorCodes are the errorCode of the 403 refusals.
var guardErrorCodes = map[authcore.Refusal]string{
	authcore.RefusedAccessTokenRequired:     "ACCESS_TOKEN_REQUIRED",
	authcore.RefusedInsufficientPermissions: "INSUFFICIENT_PERMISSIONS",
	authcore.RefusedStepUpRequired:          "STEP_UP_REQUIRED",
}

// guardMessages are the message of the other refusals.
var guardMessages = map[authcore.Refusal]string{
	authcore.RefusedNoToken:             "authentication required",
	authcore.RefusedInvalidToken:        "invalid or expired token",
	authcore.RefusedPasswordUpdateToken: "invalid token",
	authcore.RefusedUnavailable:         "session store unavailable",
	authcore.RefusedClientGone:          "session store unavailable",
	authcore.RefusedInternal:            "internal error",
}

// WriteGuardRefusal answers a refused guarded request in the documented
// error shape: {"errorCode"} for a 403, {"message"} otherwise, with its
// WWW-Authenticate challenge and, for a 503, Retry-After.
func WriteGuardRefusal(w http.ResponseWriter, d *authcore.Decision) {
	if ch := GuardChallenge(d); ch != "" {
		w.Header().Set("WWW-Authenticate", ch)
	}
	status := GuardStatus(d.Refusal)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if code, ok := guardErrorCodes[d.Refusal]; ok {
		WriteErrorCode(w, status, code)
		return
	}
	WriteMessage(w, status, guardMessages[d.Refusal])
}
