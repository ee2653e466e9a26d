package authcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// AccountDataTTL is how long run-time changes to an account (factors
// enrolled, later: password changes) are kept after they were last
// written or read. Every store key has a TTL, so these do too; an account
// in use refreshes it.
const AccountDataTTL = 400 * 24 * time.Hour

// refreshAfter is the age after which reading account data rewrites it to
// restart its TTL.
const refreshAfter = 30 * 24 * time.Hour

// accountRecord is what the gateway changed about a user at run time. The
// users file is never rewritten; these records overlay it.
type accountRecord struct {
	// Factors, when set, replaces the user's configured factors.
	Factors *Factors `json:"f,omitempty"`
	// PendingOTP are OTP channels whose enrolment awaits its code.
	PendingOTP []string `json:"po,omitempty"`
	Written    int64    `json:"w"`
}

func accountKey(credentialsID string) string { return "a:{" + credentialsID + "}" }

// User returns the user with run-time changes applied.
func (g *Gateway) User(ctx context.Context, credentialsID string) (*User, error) {
	u, _, err := g.userAndAccount(ctx, credentialsID)
	return u, err
}

func (g *Gateway) userAndAccount(ctx context.Context, credentialsID string) (*User, *accountRecord, error) {
	u, err := g.users.UserByID(ctx, credentialsID)
	if errors.Is(err, ErrUserNotFound) {
		return nil, nil, fmt.Errorf("%w: user gone", ErrInvalidToken)
	} else if err != nil {
		return nil, nil, storeError(err)
	}
	rec := &accountRecord{}
	data, err := g.store.Get(ctx, accountKey(u.ID))
	switch {
	case errors.Is(err, ErrNotFound):
		return u, rec, nil
	case err != nil:
		return nil, nil, storeError(err)
	}
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, nil, fmt.Errorf("decoding account data: %w", err)
	}
	if rec.Factors != nil {
		u.Factors = *rec.Factors
	}
	if g.now().Sub(time.UnixMilli(rec.Written)) > refreshAfter {
		if err := g.saveAccount(ctx, u.ID, rec); err != nil {
			return nil, nil, err
		}
	}
	return u, rec, nil
}

func (g *Gateway) saveAccount(ctx context.Context, credentialsID string, rec *accountRecord) error {
	rec.Written = g.now().UnixMilli()
	data, _ := json.Marshal(rec)
	if err := g.store.Set(ctx, accountKey(credentialsID), data, AccountDataTTL); err != nil {
		return storeError(err)
	}
	return nil
}

// Factor types and statuses as the Multi API reports them.
const (
	FactorOTP                 = "OTP"
	FactorPush                = "PUSH"
	FactorActive              = "ACTIVE"
	FactorPendingVerification = "PENDING_VERIFICATION"
)

// FactorStatus is one enrolled (or pending) step-up channel.
type FactorStatus struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Channel string `json:"channel"`
}

// Factors lists the user's step-up channels.
func (g *Gateway) Factors(ctx context.Context, s *Session) ([]FactorStatus, error) {
	u, rec, err := g.userAndAccount(ctx, s.CredentialsID)
	if err != nil {
		return nil, err
	}
	out := []FactorStatus{}
	for _, ch := range u.Factors.OTP {
		out = append(out, FactorStatus{FactorOTP, FactorActive, ch})
	}
	for _, ch := range rec.PendingOTP {
		if !slices.Contains(u.Factors.OTP, ch) {
			out = append(out, FactorStatus{FactorOTP, FactorPendingVerification, ch})
		}
	}
	for _, ch := range u.Factors.Push {
		out = append(out, FactorStatus{FactorPush, FactorActive, ch})
	}
	return out, nil
}

// updateFactors applies change to the user's factors and saves them.
func (g *Gateway) updateFactors(ctx context.Context, u *User, rec *accountRecord, change func(f *Factors, rec *accountRecord)) error {
	f := Factors{OTP: slices.Clone(u.Factors.OTP), Push: slices.Clone(u.Factors.Push)}
	change(&f, rec)
	rec.Factors = &f
	return g.saveAccount(ctx, u.ID, rec)
}
