package main

import (
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/authgate/authgate/authcore/manageapi/pb"
	"github.com/authgate/authgate/authcore/store/storetest"
)

// manageUsersFile writes users for the Manage API: alice with SMS MFA,
// bob without MFA.
func manageUsersFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users.json")
	data := `{"users":[
	 {"id":"1001","credentialsType":"ROOT","email":"alice@example.com","userName":"alice","password":"` + demoHash + `",
	  "firstName":"Alice","textNumber":"+35699000001","textCountryCode":"356","mfa":"SMS",
	  "identities":[{"type":"CONSUMER","id":"2001"}]},
	 {"id":"1002","credentialsType":"USER","email":"bob@example.com","userName":"bob","password":"` + demoHash + `",
	  "identities":[{"type":"CORPORATE","id":"3001"}]}
	]}`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// manageConfig serves the Manage API on /manage/ in sandbox mode, for a
// client with every scope (crm) and one that may only validate passwords
// (reader); both secrets are demoPassword. It logs all it can (debug and
// the access log), for the check that no secret is logged.
func manageConfig(store, users string) string {
	return `{
	debug
	admin 127.0.0.1:{ADMIN}
	auto_https off
	authgate {
		store ` + store + `
		signing_key ` + testSigningKey + `
		users_file ` + users + `
		sandbox
		service_client crm ` + demoHash + ` manage.user.read manage.user.write manage.otp.verify manage.otp.send
		service_client reader ` + demoHash + ` manage.user.read
	}
}
:{PORT} {
	log
	handle_path /manage/* {
		authgate_manage
	}
}
`
}

func basicAuth(user string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+demoPassword))
}

// manageError returns the single error code of a Manage answer.
func manageError(t *testing.T, r response) float64 {
	t.Helper()
	errs, _ := r.JSON["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("want one error, got %d %s", r.Status, r.Body)
	}
	return errs[0].(map[string]any)["errorCode"].(float64)
}

func TestManageAPIThroughTheBinary(t *testing.T) {
	redis := storetest.StartRedis(t)
	for _, store := range []string{"memory", "redis redis://" + redis.Addr() + "/0"} {
		t.Run(strings.Fields(store)[0], func(t *testing.T) {
			g := startGateway(t, manageConfig(store, manageUsersFile(t)))
			validate := g.URL + "/manage/v2/user/alice/validate/password"
			crm := []string{"Authorization", basicAuth("crm"), "clientIp", "203.0.113.9"}

			// Basic auth: 401 1002 without or with wrong credentials, 403 1003 without the scope.
			r := request(t, "POST", validate, `{"password":"`+demoPassword+`"}`)
			if r.Status != 401 || manageError(t, r) != 1002 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("no credentials: %d %s", r.Status, r.Body)
			}
			r = request(t, "POST", validate, `{"password":"`+demoPassword+`"}`, "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("crm:guess")))
			if r.Status != 401 || manageError(t, r) != 1002 {
				t.Fatalf("wrong secret: %d %s", r.Status, r.Body)
			}
			r = request(t, "POST", g.URL+"/manage/v2/user/send/otp", `{"userName":"alice","phoneNumber":"+35699000001"}`, "Authorization", basicAuth("reader"))
			if r.Status != 403 || manageError(t, r) != 1003 {
				t.Fatalf("missing scope: %d %s", r.Status, r.Body)
			}
			if r := request(t, "GET", validate, "", crm...); r.Status != 405 || r.str("apiRequestId") == "" {
				t.Fatalf("wrong method: %d %s", r.Status, r.Body)
			}

			// The MFA sequence, sandbox code 123456.
			r = request(t, "POST", validate, `{"password":"`+demoPassword+`"}`, crm...)
			session := r.str("sessionToken")
			if r.Status != 200 || r.JSON["mfaRequired"] != true || r.str("mfaType") != "SMS" || session == "" {
				t.Fatalf("password: %d %s", r.Status, r.Body)
			}
			r = request(t, "POST", validate, `{"password":"`+demoPassword+`","sessionToken":"`+session+`","token":"123456","mfaRememberDevice":true}`, crm...)
			remember := r.str("userMFARememberMeToken")
			if r.Status != 200 || r.JSON["mfaRequired"] != false || remember == "" {
				t.Fatalf("code: %d %s", r.Status, r.Body)
			}
			r = request(t, "POST", validate, `{"password":"`+demoPassword+`","sessionToken":"`+session+`","token":"123456"}`, crm...)
			if r.Status != 401 || manageError(t, r) != 1009 {
				t.Fatalf("session reused: %d %s", r.Status, r.Body)
			}
			r = request(t, "POST", validate, `{"password":"`+demoPassword+`","userMFARememberMeToken":"`+remember+`"}`, crm...)
			if r.Status != 200 || r.JSON["mfaBypassed"] != true || r.str("mfaBypassReason") != "REMEMBERED_DEVICE" {
				t.Fatalf("remembered: %d %s", r.Status, r.Body)
			}
			ref := r.str("apiRequestId")
			if ref == "" || ref != r.Header.Get("request-ref") {
				t.Fatalf("apiRequestId %q, request-ref %q", ref, r.Header.Get("request-ref"))
			}

			// validate/otp answers protobuf when asked.
			r = request(t, "POST", g.URL+"/manage/v2/user/send/otp", `{"userName":"alice","phoneNumber":"+356 9900 0001"}`, crm...)
			if r.Status != 200 {
				t.Fatalf("send otp: %d %s", r.Status, r.Body)
			}
			r = request(t, "POST", g.URL+"/manage/v2/user/validate/otp", `{"userName":"alice","phoneNumber":"+35699000001","otp":"123456"}`,
				append(crm, "Accept", "application/x-protobuf")...)
			var msg pb.ValidateOtpResponse
			if r.Status != 200 || r.Header.Get("Content-Type") != "application/x-protobuf" {
				t.Fatalf("validate otp: %d %q %q", r.Status, r.Header.Get("Content-Type"), r.Body)
			}
			if err := proto.Unmarshal(r.Body, &msg); err != nil {
				t.Fatal(err)
			}
			if msg.GetUser().GetUserName() != "alice" || msg.GetUser().GetFirstName() != "Alice" || msg.GetUser().GetTextCountryCode() != "356" ||
				msg.GetApiRequestId() != r.Header.Get("request-ref") {
				t.Fatalf("protobuf answer %v", &msg)
			}

			// The audit lines carry the id; no line carries a secret.
			logs := g.logs.String()
			if !strings.Contains(logs, ref) || !strings.Contains(logs, "203.0.113.9") {
				t.Errorf("the logs lack the apiRequestId %s or the clientIp", ref)
			}
			for _, secret := range []string{demoPassword, session, remember, demoHash, strings.TrimPrefix(basicAuth("crm"), "Basic ")} {
				if strings.Contains(logs, secret) {
					t.Errorf("a secret is in the logs: %.12s...", secret)
				}
			}
		})
	}
}

func TestListModulesShowsTheManageHandler(t *testing.T) {
	out, err := exec.Command(binary, "list-modules").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "http.handlers.authgate_manage\n") {
		t.Fatalf("list-modules does not show http.handlers.authgate_manage:\n%s", out)
	}
}
