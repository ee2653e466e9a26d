package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/authgate/authgate/authcore"
)

// fileUsers edits a users file {"users": [...]} for `authgate user --file`.
// Every change rewrites the whole file atomically (a temporary file renamed
// over it), so a gateway loading it on a reload sees the old or the new
// file, never half of one. Fields other than "users" are kept.
type fileUsers struct {
	path string
}

// maxFileRetries bounds the retries when another run changed the file
// between our read and our write.
const maxFileRetries = 5

// edit reads the file, lets change edit its users, checks the result as
// the server would load it, and replaces the file unless it changed in the
// meantime (then it starts over). A missing file is an empty one.
func (f *fileUsers) edit(change func(users []authcore.User) ([]authcore.User, error)) error {
	for range maxFileRetries {
		orig, err := os.ReadFile(f.path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		doc := map[string]json.RawMessage{}
		if len(bytes.TrimSpace(orig)) > 0 {
			if err := json.Unmarshal(orig, &doc); err != nil {
				return fmt.Errorf("parsing users file %s: %w", f.path, err)
			}
		}
		users, err := authcore.DecodeUsers(doc["users"])
		if err != nil {
			return fmt.Errorf("users file %s: %w", f.path, err)
		}
		if users, err = change(users); err != nil {
			return err
		}
		data, err := encodeUsersFile(doc, users)
		if err != nil {
			return err
		}
		if _, err := authcore.ParseUsersFile(data); err != nil {
			return fmt.Errorf("the users file would not load: %w", err)
		}
		if now, err := os.ReadFile(f.path); !bytes.Equal(now, orig) || (err != nil && !errors.Is(err, fs.ErrNotExist)) {
			continue
		}
		return writeFileAtomically(f.path, data)
	}
	return fmt.Errorf("users file %s: changed concurrently too often", f.path)
}

func encodeUsersFile(doc map[string]json.RawMessage, users []authcore.User) ([]byte, error) {
	out := map[string]any{}
	for k, v := range doc {
		out[k] = v
	}
	if users == nil {
		users = []authcore.User{}
	}
	out["users"] = users
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeFileAtomically replaces path with data, keeping its permissions
// (0600 for a new file).
func writeFileAtomically(path string, data []byte) error {
	mode := fs.FileMode(0o600)
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Add implements userTarget.
func (f *fileUsers) Add(_ context.Context, u *authcore.User) error {
	if err := authcore.ValidateUser(u); err != nil {
		return err
	}
	return f.edit(func(users []authcore.User) ([]authcore.User, error) {
		others, err := authcore.NewStaticUsers(slices.Clone(users))
		if err != nil {
			return nil, err
		}
		if err := others.Clash(u); err != nil {
			return nil, err
		}
		return append(users, *u), nil
	})
}

// Update implements userTarget.
func (f *fileUsers) Update(_ context.Context, id string, change func(u *authcore.User) error) (*authcore.User, error) {
	var next authcore.User
	err := f.edit(func(users []authcore.User) ([]authcore.User, error) {
		i := slices.IndexFunc(users, func(u authcore.User) bool { return u.ID == id })
		if i < 0 {
			return nil, authcore.ErrUserNotFound
		}
		others, err := authcore.NewStaticUsers(slices.Delete(slices.Clone(users), i, i+1))
		if err != nil {
			return nil, err
		}
		next = users[i]
		next.Identities = slices.Clone(next.Identities)
		next.Factors = authcore.Factors{OTP: slices.Clone(next.Factors.OTP), Push: slices.Clone(next.Factors.Push)}
		if err := change(&next); err != nil {
			return nil, err
		}
		next.ID = id
		if err := authcore.ValidateUser(&next); err != nil {
			return nil, err
		}
		if err := others.Clash(&next); err != nil {
			return nil, err
		}
		users[i] = next
		return users, nil
	})
	if err != nil {
		return nil, err
	}
	return &next, nil
}

// Delete implements userTarget.
func (f *fileUsers) Delete(_ context.Context, id string) error {
	return f.edit(func(users []authcore.User) ([]authcore.User, error) {
		i := slices.IndexFunc(users, func(u authcore.User) bool { return u.ID == id })
		if i < 0 {
			return nil, authcore.ErrUserNotFound
		}
		return slices.Delete(users, i, i+1), nil
	})
}

// List implements userTarget, in the file's order.
func (f *fileUsers) List(_ context.Context) ([]authcore.User, error) {
	data, err := os.ReadFile(f.path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Users json.RawMessage `json:"users"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing users file %s: %w", f.path, err)
	}
	users, err := authcore.DecodeUsers(doc.Users)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", f.path, err)
	}
	return users, nil
}
