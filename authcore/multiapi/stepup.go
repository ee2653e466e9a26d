package multiapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
)

// writeChallengeError answers the errors of the step-up, factor and
// password routes.
func (h *Handler) writeChallengeError(w http.ResponseWriter, r *http.Request, err error) {
	var ce *authcore.ChallengeError
	switch {
	case errors.As(err, &ce):
		httpapi.WriteErrorCode(w, http.StatusConflict, ce.Code)
	case errors.Is(err, authcore.ErrStepUpRequired):
		httpapi.WriteErrorCode(w, http.StatusForbidden, "STEP_UP_REQUIRED")
	case errors.Is(err, authcore.ErrNotFound):
		httpapi.WriteMessage(w, http.StatusNotFound, "no such challenge")
	case errors.Is(err, authcore.ErrNoSender):
		h.log.Error("no sender configured", zap.String("request_ref", authcore.RequestRef(r.Context())))
		httpapi.WriteMessage(w, http.StatusServiceUnavailable, "no sender is configured for this channel")
	case errors.Is(err, authcore.ErrSendFailed):
		// The sender failed after its retries: the code was not delivered.
		h.log.Error("sending failed", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.Error(err))
		w.Header().Set("Retry-After", "15")
		httpapi.WriteMessage(w, http.StatusServiceUnavailable, "the code could not be sent; try again later")
	default:
		h.writeError(w, r, err)
	}
}

// channelParam checks the {channel} path value against the allowed ones.
func channelParam(w http.ResponseWriter, r *http.Request, allowed ...string) (string, bool) {
	ch := r.PathValue("channel")
	for _, a := range allowed {
		if ch == a {
			return ch, true
		}
	}
	writeInvalid(w, "unsupported channel", invalidField{FieldName: "channel", Error: "IN", Params: allowed})
	return "", false
}

var pushChannels = []string{authcore.ChannelAuthy, authcore.ChannelBiometric}

type verifyRequest struct {
	VerificationCode *string `json:"verificationCode"`
}

// verificationCode reads the {"verificationCode"} body.
func verificationCode(w http.ResponseWriter, r *http.Request) (string, bool) {
	var req verifyRequest
	if !decodeBody(w, r, &req) {
		return "", false
	}
	switch {
	case req.VerificationCode == nil || *req.VerificationCode == "":
		writeInvalid(w, "verificationCode is required", invalidField{FieldName: "verificationCode", Error: "REQUIRED"})
		return "", false
	case len(*req.VerificationCode) > 50:
		writeInvalid(w, "verificationCode is too long", invalidField{FieldName: "verificationCode", Error: "SIZE", Params: []string{"1", "50"}})
		return "", false
	}
	return *req.VerificationCode, true
}

func (h *Handler) issuePush(w http.ResponseWriter, r *http.Request, c *caller) {
	ch, ok := channelParam(w, r, pushChannels...)
	if !ok {
		return
	}
	id, err := h.stepUp.IssuePush(r.Context(), c.session, ch)
	if err != nil {
		h.writeChallengeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct {
		ID string `json:"id"`
	}{id})
}

type pushStatusResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (h *Handler) pushStatus(w http.ResponseWriter, r *http.Request, c *caller) {
	ch, ok := channelParam(w, r, pushChannels...)
	if !ok {
		return
	}
	id := r.PathValue("id")
	status, err := h.stepUp.PushStatus(r.Context(), c.session, ch, id)
	if err != nil {
		h.writeChallengeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, pushStatusResponse{ID: id, Status: status})
}

// resolvePush is the push provider's callback: no bearer token, but the
// body must be signed with the push secret.
func (h *Handler) resolvePush(w http.ResponseWriter, r *http.Request) {
	ch, ok := channelParam(w, r, pushChannels...)
	if !ok {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		httpapi.WriteMessage(w, http.StatusRequestEntityTooLarge, "request body is too large")
		return
	}
	if !h.stepUp.SignedByPushProvider(body, r.Header.Get("signature")) {
		httpapi.WriteMessage(w, http.StatusUnauthorized, "bad or missing signature")
		return
	}
	var req struct {
		Status *string `json:"status"`
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if !decodeBody(w, r, &req) {
		return
	}
	if req.Status == nil || (*req.Status != authcore.PushVerified && *req.Status != authcore.PushDeclined) {
		writeInvalid(w, "status must be VERIFIED or DECLINED", invalidField{FieldName: "status", Error: "IN",
			Params: []string{authcore.PushVerified, authcore.PushDeclined}})
		return
	}
	if err := h.stepUp.ResolvePush(r.Context(), ch, r.PathValue("id"), *req.Status); err != nil {
		h.writeChallengeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Handler) simulate(outcome string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		answer, err := h.stepUp.SimulatePush(r.Context(), r.PathValue("credentials_id"), r.PathValue("challenge_id"), outcome)
		if err != nil {
			h.writeChallengeError(w, r, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, struct {
			Code string `json:"code"`
		}{answer})
	}
}

func (h *Handler) factors(w http.ResponseWriter, r *http.Request, c *caller) {
	factors, err := h.stepUp.Factors(r.Context(), c.session)
	if err == nil && h.passkeys != nil {
		var ids []string
		ids, err = h.passkeys.List(r.Context(), c.session.CredentialsID)
		for _, id := range ids {
			factors = append(factors, authcore.FactorStatus{Type: authcore.FactorPasskey, Status: authcore.FactorActive, Channel: id})
		}
	}
	if err != nil {
		h.writeChallengeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, struct {
		Factors []authcore.FactorStatus `json:"factors"`
	}{factors})
}

// codeIssueRoute serves a POST that sends a one-time code on {channel}
// (step-up or enrolment): 204, or the challenge's error.
func (h *Handler) codeIssueRoute(issue func(context.Context, *authcore.Session, string) error) func(http.ResponseWriter, *http.Request, *caller) {
	return func(w http.ResponseWriter, r *http.Request, c *caller) {
		ch, ok := channelParam(w, r, authcore.ChannelSMS)
		if !ok {
			return
		}
		h.answer(w, r, issue(r.Context(), c.session, ch))
	}
}

// codeVerifyRoute serves a POST {"verificationCode"} that checks a code.
func (h *Handler) codeVerifyRoute(verify func(context.Context, *authcore.Session, string, string) error) func(http.ResponseWriter, *http.Request, *caller) {
	return func(w http.ResponseWriter, r *http.Request, c *caller) {
		ch, ok := channelParam(w, r, authcore.ChannelSMS)
		if !ok {
			return
		}
		code, ok := verificationCode(w, r)
		if !ok {
			return
		}
		h.answer(w, r, verify(r.Context(), c.session, ch, code))
	}
}

// pushFactorRoute serves the enrolment or removal of a push channel.
func (h *Handler) pushFactorRoute(change func(context.Context, *authcore.Session, string) error) func(http.ResponseWriter, *http.Request, *caller) {
	return func(w http.ResponseWriter, r *http.Request, c *caller) {
		ch, ok := channelParam(w, r, pushChannels...)
		if !ok {
			return
		}
		h.answer(w, r, change(r.Context(), c.session, ch))
	}
}

// answer is 204 on success, else the error's answer.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		h.writeChallengeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
