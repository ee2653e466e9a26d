package manageapi

import (
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/httpapi"
	"github.com/authgate/authgate/authcore/manageapi/pb"
)

// Field size limits: generous for real values, small enough that nothing
// costly is done with a huge one.
const (
	maxUserName = 254
	maxPassword = 1024
	maxToken    = 256
	maxPhone    = 32
)

// user is the Manage API's user object. Fields authgate does not keep
// (invites, last login, rollout stage) are null.
type user struct {
	FirstName           string  `json:"firstName"`
	LastName            string  `json:"lastName"`
	UserName            string  `json:"userName"`
	Email               string  `json:"email"`
	Phone               string  `json:"phone"`
	TextNumber          string  `json:"textNumber"`
	NickName            string  `json:"nickName"`
	UUID                string  `json:"uuid"`
	PasswordExpires     *string `json:"passwordExpires"`
	ForcePasswordChange bool    `json:"forcePasswordChange"`
	LatestInviteStatus  *string `json:"latestInviteStatus"`
	LatestInviteDate    *string `json:"latestInviteDate"`
	LatestInviteUUID    *string `json:"latestInviteUUID"`
	IsValid             bool    `json:"isValid"`
	LastLoginTimestamp  *int64  `json:"lastLoginTimestamp"`
	PhoneCountryCode    string  `json:"phoneCountryCode"`
	TextCountryCode     string  `json:"textCountryCode"`
	UserRolloutStage    *string `json:"userRolloutStage"`
}

func userOf(u *authcore.User) *user {
	out := &user{
		FirstName: u.FirstName, LastName: u.LastName, UserName: u.UserName, Email: u.Email,
		Phone: u.Phone, TextNumber: u.TextNumber, NickName: u.NickName, UUID: u.UUID,
		ForcePasswordChange: u.ForcePasswordChange, IsValid: !u.Disabled,
		PhoneCountryCode: u.PhoneCountryCode, TextCountryCode: u.TextCountryCode,
	}
	if u.PasswordExpires != nil {
		s := u.PasswordExpires.UTC().Format(time.RFC3339)
		out.PasswordExpires = &s
	}
	return out
}

// proto is the user as the protobuf answer carries it.
func (u *user) proto() *pb.User {
	return &pb.User{
		FirstName: u.FirstName, LastName: u.LastName, UserName: u.UserName, Email: u.Email,
		Phone: u.Phone, TextNumber: u.TextNumber, NickName: u.NickName, Uuid: u.UUID,
		PasswordExpires: u.PasswordExpires, ForcePasswordChange: u.ForcePasswordChange,
		LatestInviteStatus: u.LatestInviteStatus, LatestInviteDate: u.LatestInviteDate,
		LatestInviteUuid: u.LatestInviteUUID, IsValid: u.IsValid, LastLoginTimestamp: u.LastLoginTimestamp,
		PhoneCountryCode: u.PhoneCountryCode, TextCountryCode: u.TextCountryCode,
		UserRolloutStage: u.UserRolloutStage,
	}
}

type validatePasswordRequest struct {
	Password               *string `json:"password"`
	Token                  *string `json:"token"`
	EmailToken             *string `json:"emailToken"`
	UserMFARememberMeToken *string `json:"userMFARememberMeToken"`
	SessionToken           *string `json:"sessionToken"`
	MFARememberDevice      bool    `json:"mfaRememberDevice"`
}

type validatePasswordResponse struct {
	envelope
	MFARequired            bool   `json:"mfaRequired"`
	MFABypassed            bool   `json:"mfaBypassed"`
	MFABypassReason        string `json:"mfaBypassReason,omitempty"`
	MFAType                string `json:"mfaType,omitempty"`
	SessionToken           string `json:"sessionToken,omitempty"`
	UserMFARememberMeToken string `json:"userMFARememberMeToken,omitempty"`
	User                   *user  `json:"user,omitempty"`
}

func (h *Handler) validatePassword(w http.ResponseWriter, r *http.Request, c *caller) {
	var body validatePasswordRequest
	if !decodeBody(w, r, &body, true) {
		return
	}
	req := authcore.ValidatePasswordRequest{UserName: r.PathValue("UserName"), RememberDevice: body.MFARememberDevice}
	if len(req.UserName) > maxUserName {
		writeFailure(w, r, InvalidRequest, "UserName is too long")
		return
	}
	var ok bool
	for _, f := range []struct {
		name     string
		v        *string
		dst      *string
		required bool
		max      int
	}{
		{"password", body.Password, &req.Password, true, maxPassword},
		{"token", body.Token, &req.Code, false, maxToken},
		{"emailToken", body.EmailToken, &req.EmailCode, false, maxToken},
		{"userMFARememberMeToken", body.UserMFARememberMeToken, &req.RememberToken, false, maxToken},
		{"sessionToken", body.SessionToken, &req.SessionToken, false, maxToken},
	} {
		if *f.dst, ok = field(w, r, f.name, f.v, f.required, f.max); !ok {
			return
		}
	}
	res, err := h.mfa.ValidatePassword(r.Context(), req)
	h.audit(r, c, "validate password", res, err)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := validatePasswordResponse{envelope: newEnvelope(r.Context()),
		MFARequired: res.MFARequired, MFABypassed: res.MFABypassed, MFABypassReason: res.MFABypassReason,
		MFAType: res.MFAType, SessionToken: res.SessionToken, UserMFARememberMeToken: res.RememberToken}
	if !res.MFARequired {
		out.User = userOf(res.User)
	}
	if res.CodeNotResent {
		out.warn(CodeNotResent, "a code was sent moments ago and was not sent again; it is still valid")
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// audit writes the one line a password validation gets: who asked, for
// whom, from where, and how it ended; never a secret.
func (h *Handler) audit(r *http.Request, c *caller, event string, res *authcore.ValidatePasswordResult, err error) {
	if errors.Is(err, authcore.ErrUnavailable) {
		return // nothing was decided; the outage log counts it (SPEC §10)
	}
	fields := []zap.Field{zap.String("request_ref", authcore.RequestRef(r.Context())), zap.String("service_client", c.client),
		zap.String("client_ip", c.ip), zap.String("result", result(res, err))}
	if res != nil && res.User != nil {
		fields = append(fields, zap.String("credentials_id", res.User.ID))
	}
	h.log.Info("manage "+event, fields...)
}

func result(res *authcore.ValidatePasswordResult, err error) string {
	switch {
	case err == nil && res == nil:
		return "success"
	case err == nil && res.MFARequired:
		return "mfa_required"
	case err == nil && res.MFABypassed:
		return "mfa_bypassed"
	case err == nil:
		return "success"
	case errors.Is(err, authcore.ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, authcore.ErrLocked):
		return "locked"
	case errors.Is(err, authcore.ErrInvalidOTP):
		return "invalid_otp"
	case errors.Is(err, authcore.ErrOTPExpired):
		return "otp_expired"
	case errors.Is(err, authcore.ErrOTPAttemptsExceeded):
		return "otp_attempts_exceeded"
	case errors.Is(err, authcore.ErrMFASessionInvalid):
		return "mfa_session_invalid"
	case errors.As(err, new(*authcore.RateLimited)):
		return "rate_limited"
	}
	return "error"
}

type forgetDevicesRequest struct {
	UserMFARememberMeToken *string `json:"userMFARememberMeToken"`
}

type forgetDevicesResponse struct {
	envelope
	Revoked string `json:"revoked"`
}

// forgetDevices revokes one remember token of the user (body
// {userMFARememberMeToken}) or, without a body, all of them.
func (h *Handler) forgetDevices(w http.ResponseWriter, r *http.Request, c *caller) {
	name := r.PathValue("UserName")
	if len(name) > maxUserName {
		writeFailure(w, r, InvalidRequest, "UserName is too long")
		return
	}
	var body forgetDevicesRequest
	if !decodeBody(w, r, &body, false) {
		return
	}
	token, ok := field(w, r, "userMFARememberMeToken", body.UserMFARememberMeToken, false, maxToken)
	if !ok {
		return
	}
	revoked, err := "ALL", error(nil)
	if token != "" {
		revoked, err = "ONE", h.mfa.ForgetDevice(r.Context(), name, token)
	} else {
		err = h.mfa.ForgetAllDevices(r.Context(), name)
	}
	h.log.Info("manage forget devices", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.String("service_client", c.client),
		zap.String("client_ip", c.ip), zap.String("revoked", revoked), zap.String("result", result(nil, err)))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, forgetDevicesResponse{envelope: newEnvelope(r.Context()), Revoked: revoked})
}

type otpRequest struct {
	UserName    *string `json:"userName"`
	PhoneNumber *string `json:"phoneNumber"`
	OTP         *string `json:"otp"`
}

// otpFields reads userName and phoneNumber, and otp when withCode.
func otpFields(w http.ResponseWriter, r *http.Request, withCode bool) (name, phone, code string, ok bool) {
	var body otpRequest
	if !decodeBody(w, r, &body, true) {
		return "", "", "", false
	}
	if name, ok = field(w, r, "userName", body.UserName, true, maxUserName); !ok {
		return
	}
	if phone, ok = field(w, r, "phoneNumber", body.PhoneNumber, true, maxPhone); !ok {
		return
	}
	if withCode {
		code, ok = field(w, r, "otp", body.OTP, true, maxToken)
	}
	return name, phone, code, ok
}

type validateOTPResponse struct {
	envelope
	User *user `json:"user"`
}

func (h *Handler) validateOTP(w http.ResponseWriter, r *http.Request, c *caller) {
	name, phone, code, ok := otpFields(w, r, true)
	if !ok {
		return
	}
	u, err := h.mfa.ValidateOTP(r.Context(), name, phone, code)
	fields := []zap.Field{zap.String("request_ref", authcore.RequestRef(r.Context())), zap.String("service_client", c.client),
		zap.String("client_ip", c.ip), zap.String("result", result(nil, err))}
	if u != nil {
		fields = append(fields, zap.String("credentials_id", u.ID))
	}
	h.log.Info("manage validate otp", fields...)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := validateOTPResponse{envelope: newEnvelope(r.Context()), User: userOf(u)}
	if wantsProtobuf(r) {
		writeProtobuf(w, r, &pb.ValidateOtpResponse{Errors: []*pb.Error{}, Warnings: []*pb.Warning{},
			ApiRequestId: out.APIRequestID, User: out.User.proto()})
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (h *Handler) sendOTP(w http.ResponseWriter, r *http.Request, c *caller) {
	name, phone, _, ok := otpFields(w, r, false)
	if !ok {
		return
	}
	err := h.mfa.SendOTP(r.Context(), name, phone)
	h.log.Info("manage send otp", zap.String("request_ref", authcore.RequestRef(r.Context())), zap.String("service_client", c.client),
		zap.String("client_ip", c.ip), zap.String("result", result(nil, err)))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, newEnvelope(r.Context()))
}
