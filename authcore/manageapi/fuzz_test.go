package manageapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authgate/authgate/authcore"
)

// FuzzManageRequests feeds any user name, body, Accept and clientIp
// header to the Manage API's routes (SPEC §9): the handler answers without
// panicking, never with a 5xx, and always with the envelope (or protobuf
// from validate/otp). The handler is called directly over a memory store
// with MinCost bcrypt hashes, sandbox codes and no rate limits, so
// fuzzing runs fast:
//
//	go test -run '^$' -fuzz '^FuzzManageRequests$' -fuzztime 10s ./authcore/manageapi
func FuzzManageRequests(f *testing.F) {
	for _, seed := range []struct {
		route                     uint8
		user, body, accept, ipHdr string
	}{
		{0, "bob", `{"password":"` + password + `"}`, "", ""},
		{0, "alice", `{"password":"` + password + `","sessionToken":"x","token":"123456","mfaRememberDevice":true}`, "", "203.0.113.9"},
		{0, "tom", `{"password":"` + password + `","userMFARememberMeToken":"` + strings.Repeat("A", 43) + `"}`, "", "::1"},
		{0, "a%2Fb", `{"password":1e999}`, "", "not-an-ip"},
		{0, "bob", "{\"password\":\"\xff\"}", "", ""},
		{1, "", `{"userName":"alice","phoneNumber":"+356 9900 0001","otp":"123456"}`, "application/x-protobuf", ""},
		{1, "", `{"userName":"alice","phoneNumber":"+356 9900 0001","otp":["123456"]}`, "application/x-protobuf;q=0", ""},
		{2, "", `{"userName":"alice","phoneNumber":"(+356) 99-00-00-01"}`, "", ""},
		{2, "", `[]`, "", ""},
		{3, "alice", ``, "", ""},
		{3, "alice", `{"userMFARememberMeToken":null}`, "", ""},
		{4, "", "token=eyJhbGciOiJIUzI1NiJ9.e30.x&token_type_hint=access_token", "", ""},
		{4, "", "token=%zz", "", ""},
		{5, "", "token=" + strings.Repeat("a", 9000), "", ""},
	} {
		f.Add(seed.route, seed.user, seed.body, seed.accept, seed.ipHdr)
	}
	// dave's MFA is misconfigured on purpose (a 1500 elsewhere); he is
	// left out so that every 5xx here is a bug.
	users, err := authcore.NewStaticUsers(slices.DeleteFunc(testUserList(f), func(u authcore.User) bool { return u.UserName == "dave" }))
	if err != nil {
		f.Fatal(err)
	}
	e := newEnv(f, memoryKind(), func(o *authcore.Options) { o.Sandbox, o.Users = true, users })
	routes := []struct{ method, path string }{
		{"POST", "/v2/user/{}/validate/password"},
		{"POST", "/v2/user/validate/otp"},
		{"POST", "/v2/user/send/otp"},
		{"DELETE", "/v2/user/{}/rememberedDevices"},
		{"POST", "/introspect"},
		{"POST", "/revoke"},
	}
	f.Fuzz(func(t *testing.T, route uint8, user, body, accept, ipHdr string) {
		rt := routes[int(route)%len(routes)]
		req := httptest.NewRequest(rt.method, "/", strings.NewReader(body))
		req.URL.Path = strings.ReplaceAll(rt.path, "{}", user)
		req.URL.RawPath = strings.ReplaceAll(rt.path, "{}", url.PathEscape(user))
		req.SetBasicAuth("backend", backendSecret)
		if rt.path == "/introspect" || rt.path == "/revoke" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if accept != "" {
			req.Header["Accept"] = []string{accept}
		}
		if ipHdr != "" {
			req.Header["Clientip"] = []string{ipHdr}
		}
		w := httptest.NewRecorder()
		e.handler.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s: %d %s", rt.method, req.URL.Path, w.Code, w.Body.Bytes())
		}
		if w.Header().Get("request-ref") == "" {
			t.Fatal("no request-ref header")
		}
		if w.Header().Get("Content-Type") == "application/x-protobuf" {
			if w.Code != http.StatusOK {
				t.Fatalf("protobuf with %d", w.Code)
			}
			return
		}
		if rt.path == "/introspect" && w.Code == http.StatusOK {
			var answer struct {
				Active *bool `json:"active"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil || answer.Active == nil {
				t.Fatalf("introspect: not an RFC 7662 answer: %s", w.Body.Bytes())
			}
			return
		}
		var env struct {
			Errors       []json.RawMessage `json:"errors"`
			Warnings     []json.RawMessage `json:"warnings"`
			APIRequestID string            `json:"apiRequestId"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Errors == nil || env.Warnings == nil || env.APIRequestID == "" {
			t.Fatalf("%s %s: %d, not the envelope: %s", rt.method, req.URL.Path, w.Code, w.Body.Bytes())
		}
		if (w.Code == http.StatusOK) != (len(env.Errors) == 0) {
			t.Fatalf("status %d with errors %s", w.Code, w.Body.Bytes())
		}
	})
}
