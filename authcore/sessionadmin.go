package authcore

import (
	"context"
	"errors"
	"slices"

	"go.uber.org/zap"
)

// Session administration (SPEC §13): an operator lists a user's sessions,
// ends one or all of them, and lifts a lockout. A listing reads the user's
// session index (Keys.UserSessions) and each session once, without sliding
// it; index entries whose sessions have ended are removed as they are
// found. No request path lists sessions.

// ListSessions returns the user's live sessions, oldest first.
func (s *Sessions) ListSessions(ctx context.Context, user *User) ([]*Session, error) {
	index := Keys.UserSessions(user.ID)
	ids, err := s.store.Members(ctx, index)
	if err != nil {
		return nil, storeError(err)
	}
	now := s.now()
	out := make([]*Session, 0, len(ids))
	for _, id := range ids {
		sess, err := s.store.GetSession(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && !now.Before(sess.Expires)):
			// Ended (expired, logged out, revoked): its entry goes too.
			if err := s.store.RemoveMember(ctx, index, id); err != nil {
				return nil, storeError(err)
			}
			continue
		case err != nil:
			return nil, storeError(err)
		}
		if sess.CredentialsID == user.ID {
			out = append(out, sess)
		}
	}
	slices.SortFunc(out, func(a, b *Session) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// EndSession ends one of the user's sessions on every node. A session that
// is not the user's, or no longer exists, is no error: there is nothing
// to end.
func (s *Sessions) EndSession(ctx context.Context, user *User, id string) error {
	sess, err := s.store.GetSession(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return storeError(err)
	case sess.CredentialsID != user.ID:
		return nil
	}
	if err := s.store.DeleteSession(ctx, id); err != nil {
		return storeError(err)
	}
	if err := s.store.RemoveMember(ctx, Keys.UserSessions(user.ID), id); err != nil {
		return storeError(err)
	}
	s.log.Info("session ended by an administrator", append(auditFields(ctx),
		zap.String("credentials_id", user.ID), zap.String("session_id", id))...)
	return nil
}

// EndAllSessions ends every session of the user on every node.
func (s *Sessions) EndAllSessions(ctx context.Context, user *User) error {
	if err := endAll(ctx, s.store, user.ID); err != nil {
		return err
	}
	if err := s.store.Delete(ctx, Keys.UserSessions(user.ID)); err != nil {
		return storeError(err)
	}
	s.log.Info("sessions ended by an administrator", append(auditFields(ctx), zap.String("credentials_id", user.ID))...)
	return nil
}
