package authcore_test

import (
	"strings"
	"testing"

	"github.com/authgate/authgate/authcore"
)

// usersFileHash is a valid bcrypt hash for users-file cases.
const usersFileHash = "$2a$10$sTiPAu0YBTUXvwzTQGjgvOPIBvHHsh/Olryw4fpXjZmEauQhjVxS2"

// usersFileUser is a valid users-file entry; extra is spliced in as more
// fields.
func usersFileUser(extra string) string {
	return `{"id": "1003", "credentialsType": "ROOT", "email": "carol@example.com", "password": "` + usersFileHash +
		`", "identities": [{"type": "CONSUMER", "id": "2003"}]` + extra + `}`
}

func TestUsersFileRefusesWhatTheServerCouldNotUseNamingTheUser(t *testing.T) {
	cases := map[string]struct{ user, want string }{
		"misspelt field": {`{"id": "1003", "credentialsType": "ROOT", "email": "carol@example.com", "pasword": "` + usersFileHash + `", "identities": [{"type": "CONSUMER", "id": "2003"}]}`,
			`user 1 ("carol@example.com"): unknown field "pasword"`},
		"unknown nested field": {usersFileUser(`, "factors": {"sms": ["SMS"]}`), `user 1 ("carol@example.com"): unknown field "sms"`},
		"mfa SMS without a number": {usersFileUser(`, "mfa": "SMS"`),
			`user 1 ("carol@example.com"): mfa SMS needs a textNumber (or phone) to send codes to`},
		"SMS factor without a number": {usersFileUser(`, "factors": {"otp": ["SMS"]}`),
			`user 1 ("carol@example.com"): factors.otp SMS needs a textNumber (or phone) to send codes to`},
		"mfa TOTP without a secret": {usersFileUser(`, "mfa": "TOTP"`), `user 1 ("carol@example.com"): mfa TOTP needs a totpSecret`},
		"TOTP secret not base32":    {usersFileUser(`, "mfa": "TOTP", "totpSecret": "not base32!"`), `user 1 ("carol@example.com"): totpSecret is not base32`},
	}
	first := `{"id": "1001", "credentialsType": "USER", "email": "alice@example.com", "password": "` + usersFileHash +
		`", "identities": [{"type": "CONSUMER", "id": "2001"}]}`
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := authcore.ParseUsersFile([]byte(`{"users": [` + first + `, ` + tc.user + `]}`))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), usersFileHash) {
				t.Fatalf("the error shows a hash: %v", err)
			}
		})
	}
}

func TestUsersFileLoadsServableUsersAndKeepsOtherTopLevelFields(t *testing.T) {
	users, err := authcore.ParseUsersFile([]byte(`{"comment": "reviewed 2026-12", "users": [` +
		usersFileUser(`, "mfa": "SMS", "textNumber": "+35699000003", "factors": {"otp": ["SMS"]}`) + `, ` +
		`{"id": "1004", "credentialsType": "USER", "email": "dan@example.com", "password": "` + usersFileHash +
		`", "identities": [{"type": "CORPORATE", "id": "3004"}], "mfa": "TOTP", "totpSecret": "JBSWY3DPEHPK3PXP"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if users.Len() != 2 {
		t.Fatalf("%d users, want 2", users.Len())
	}
}
