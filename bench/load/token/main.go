// Command token gets an ACCESS token from a running authgate through its
// Multi API (login_with_password, then access_token), optionally stepping
// the session up with the sandbox OTP code 123456, and prints the token.
//
//	token -url http://127.0.0.1:8080/multi -email alice@example.com \
//	      -password Demo-Pass-123 -identity CONSUMER:2001 [-stepup]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

var client = &http.Client{Timeout: 10 * time.Second}

func call(method, url, bearer, body string) (int, map[string]any, error) {
	req, err := http.NewRequest(method, url, bytes.NewBufferString(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, m, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, m, nil
}

func main() {
	base := flag.String("url", "", "Multi API base URL, e.g. http://127.0.0.1:8080/multi")
	email := flag.String("email", "alice@example.com", "login email")
	password := flag.String("password", "Demo-Pass-123", "login password")
	identity := flag.String("identity", "CONSUMER:2001", "identity TYPE:ID for the access token")
	stepup := flag.Bool("stepup", false, "step the session up with the sandbox SMS code 123456")
	flag.Parse()
	if *base == "" {
		fail(fmt.Errorf("-url is required"))
	}
	idType, idID, ok := strings.Cut(*identity, ":")
	if !ok {
		fail(fmt.Errorf("-identity wants TYPE:ID"))
	}
	login, _ := json.Marshal(map[string]any{"email": *email, "password": map[string]string{"value": *password}})
	_, m, err := call("POST", *base+"/login_with_password", "", string(login))
	if err != nil {
		fail(err)
	}
	auth, _ := m["token"].(string)
	if auth == "" {
		fail(fmt.Errorf("login: no token in %v", m))
	}
	_, m, err = call("POST", *base+"/access_token", auth, fmt.Sprintf(`{"identity":{"type":%q,"id":%q}}`, idType, idID))
	if err != nil {
		fail(err)
	}
	access, _ := m["token"].(string)
	if access == "" {
		fail(fmt.Errorf("access_token: no token in %v", m))
	}
	if *stepup {
		if _, _, err := call("POST", *base+"/stepup/challenges/otp/SMS", access, ""); err != nil {
			fail(err)
		}
		if _, _, err := call("POST", *base+"/stepup/challenges/otp/SMS/verify", access, `{"verificationCode":"123456"}`); err != nil {
			fail(err)
		}
	}
	fmt.Println(access)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "token:", err)
	os.Exit(1)
}
