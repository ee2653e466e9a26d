package multiapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/authcore"
	"github.com/authgate/authgate/authcore/multiapi"
	"github.com/authgate/authgate/authcore/store/memory"
)

// multiOpenAPIPath is the Weavr Multi OpenAPI document SPEC §5 holds the
// Multi API routes to, relative to this package's directory.
const multiOpenAPIPath = "../../../shared/reference/weavr-multi-openapi-3.32.1.yaml"

const (
	openAPITestPassword = password
	openAPITestAPIKey   = "openapi-test-api-key"
)

var multiOpenAPI struct {
	once sync.Once
	doc  *openapi3.T
	err  error
}

// loadMultiOpenAPI loads and validates the document once per test binary.
func loadMultiOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	multiOpenAPI.once.Do(func() {
		if _, err := os.Stat(multiOpenAPIPath); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				multiOpenAPI.err = errors.New("the Weavr Multi OpenAPI document is missing: expected it at " +
					multiOpenAPIPath + " (relative to authcore/multiapi), i.e. /work/shared/reference/weavr-multi-openapi-3.32.1.yaml; SPEC §5 requires the Multi API to match it")
				return
			}
			multiOpenAPI.err = err
			return
		}
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile(multiOpenAPIPath)
		if err != nil {
			multiOpenAPI.err = err
			return
		}
		// The document's examples are generator placeholders (empty ids
		// and country codes) that break its own schemas; they describe
		// nothing our handler sends, so only the schemas are validated.
		if err := doc.Validate(loader.Context, openapi3.DisableExamplesValidation()); err != nil {
			multiOpenAPI.err = err
			return
		}
		multiOpenAPI.doc = doc
	})
	if multiOpenAPI.err != nil {
		t.Fatalf("loading %s: %v", multiOpenAPIPath, multiOpenAPI.err)
	}
	return multiOpenAPI.doc
}

// newOpenAPITestServer serves the Multi API with the api-key the document
// declares on every route, and the users of newServer: alice (ROOT, two
// identities) and carol, whose password has expired.
func newOpenAPITestServer(t *testing.T) *httptest.Server {
	t.Helper()
	return newServerWith(t, func(o *authcore.Options) { o.RateLimits = map[string]authcore.RateLimit{} }, openAPITestAPIKey)
}

// openAPIClient sends requests to the test server and checks each exchange
// against the document.
type openAPIClient struct {
	srv    *httptest.Server
	router routers.Router
}

type openAPIExchange struct {
	method, path, body string
	// apiKey is sent in the api-key header unless omitAPIKey.
	omitAPIKey bool
	// token, when set, is sent as "Authorization: Bearer <token>".
	token string
}

type openAPIResult struct {
	status int
	header http.Header
	raw    []byte
	route  *routers.Route
	input  *openapi3filter.RequestValidationInput
	// requestErr is what the document says of the request (nil: it conforms).
	requestErr error
}

func (c *openAPIClient) newRequest(t *testing.T, x openAPIExchange) *http.Request {
	t.Helper()
	var body io.Reader = http.NoBody
	if x.body != "" {
		body = strings.NewReader(x.body)
	}
	req, err := http.NewRequest(x.method, c.srv.URL+x.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if x.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if !x.omitAPIKey {
		req.Header.Set("api-key", openAPITestAPIKey)
	}
	if x.token != "" {
		req.Header.Set("Authorization", "Bearer "+x.token)
	}
	return req
}

var openAPIOptions = &openapi3filter.Options{
	// Authentication is tested elsewhere: accept every security scheme
	// the document names (api_key and auth_token).
	AuthenticationFunc:    func(context.Context, *openapi3filter.AuthenticationInput) error { return nil },
	IncludeResponseStatus: true,
	MultiError:            true,
}

// exchange validates the request against the document, sends it and
// returns the answer. It fails the test if no documented route matches.
func (c *openAPIClient) exchange(t *testing.T, x openAPIExchange) openAPIResult {
	t.Helper()
	check := c.newRequest(t, x)
	route, params, err := c.router.FindRoute(check)
	if err != nil {
		t.Fatalf("%s %s: the document has no such operation: %v", x.method, x.path, err)
	}
	input := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route, Options: openAPIOptions}
	reqErr := openapi3filter.ValidateRequest(context.Background(), input)

	resp, err := http.DefaultClient.Do(c.newRequest(t, x))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return openAPIResult{status: resp.StatusCode, header: resp.Header, raw: raw, route: route, input: input, requestErr: reqErr}
}

// validateResponse checks status, headers and body against the response
// the document declares for that status (or its default response).
func (c *openAPIClient) validateResponse(res openAPIResult, body []byte) error {
	return c.validateResponseWith(res, body, openAPIOptions)
}

// validateResponseWith is validateResponse with other options.
func (c *openAPIClient) validateResponseWith(res openAPIResult, body []byte, opts *openapi3filter.Options) error {
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: res.input,
		Status:                 res.status,
		Header:                 res.header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                opts,
	})
}

// token helpers: they drive the API without checking it, to set up state.

func (c *openAPIClient) loginToken(t *testing.T, email string, wantStatus int) string {
	t.Helper()
	res := c.exchange(t, openAPIExchange{method: "POST", path: "/login_with_password",
		body: `{"email":"` + email + `","password":{"value":"` + openAPITestPassword + `"}}`})
	var body struct {
		Token string `json:"token"`
	}
	if res.status != wantStatus || json.Unmarshal(res.raw, &body) != nil || body.Token == "" {
		t.Fatalf("setup: login %s: %d %s, want %d with a token", email, res.status, res.raw, wantStatus)
	}
	return body.Token
}

func (c *openAPIClient) authToken(t *testing.T) string {
	return c.loginToken(t, "alice@example.com", http.StatusOK)
}

func (c *openAPIClient) accessToken(t *testing.T) string {
	t.Helper()
	res := c.exchange(t, openAPIExchange{method: "POST", path: "/access_token", token: c.authToken(t),
		body: `{"identity":{"type":"CORPORATE","id":"3001"}}`})
	var body struct {
		Token string `json:"token"`
	}
	if res.status != http.StatusOK || json.Unmarshal(res.raw, &body) != nil || body.Token == "" {
		t.Fatalf("setup: access_token: %d %s", res.status, res.raw)
	}
	return body.Token
}

func (c *openAPIClient) loggedOutToken(t *testing.T) string {
	t.Helper()
	tok := c.authToken(t)
	if res := c.exchange(t, openAPIExchange{method: "POST", path: "/logout", token: tok}); res.status != http.StatusNoContent {
		t.Fatalf("setup: logout: %d %s", res.status, res.raw)
	}
	return tok
}

func (c *openAPIClient) passwordUpdateToken(t *testing.T) string {
	return c.loginToken(t, "carol@example.com", http.StatusConflict)
}

// responseSchema returns the schema the document declares for the JSON
// body of status on route (falling back to default), or nil when it
// declares no content.
func responseSchema(route *routers.Route, status int) *openapi3.Schema {
	ref := route.Operation.Responses.Status(status)
	if ref == nil {
		ref = route.Operation.Responses.Default()
	}
	if ref == nil || ref.Value == nil || len(ref.Value.Content) == 0 {
		return nil
	}
	mt := ref.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return nil
	}
	return mt.Schema.Value
}

// forbidsAdditionalProperties tells whether an object schema rejects
// properties it does not list.
func forbidsAdditionalProperties(s *openapi3.Schema) bool {
	if s == nil {
		return false
	}
	if s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has {
		return true
	}
	if ap := s.AdditionalProperties.Schema; ap != nil && ap.Value != nil && ap.Value.Not != nil {
		return true
	}
	if s.UnevaluatedProperties.Has != nil && !*s.UnevaluatedProperties.Has {
		return true
	}
	return false
}

// errorCodeEnum returns the values the schema allows for errorCode, and
// whether it declares any.
func errorCodeEnum(s *openapi3.Schema) ([]string, bool) {
	if s == nil || s.Properties["errorCode"] == nil || s.Properties["errorCode"].Value == nil {
		return nil, false
	}
	var out []string
	for _, v := range s.Properties["errorCode"].Value.Enum {
		if str, ok := v.(string); ok {
			out = append(out, str)
		}
	}
	return out, len(out) > 0
}

// tokenFunc sets up what a case needs and returns the bearer token it
// sends ("" for none).
type tokenFunc func(*testing.T) string

// openAPICase is one exchange with the Multi API checked against the
// document.
type openAPICase struct {
	name       string
	method     string
	path       string
	body       string
	omitAPIKey bool
	token      tokenFunc
	status     int
	// requestBreaksDocument: the request is one the document itself
	// rejects, which is why we answer 400. False: the document accepts
	// it and the 400 comes from a SPEC rule.
	requestBreaksDocument bool
	// undeclaredBody: the document declares no content for this status
	// but the SPEC has every error answer with a JSON body ("JSON bodies
	// only", §5). kin-openapi then checks only the status and the
	// headers; the test checks that the document indeed declares no
	// body there and that ours is JSON.
	undeclaredBody bool
	// specAddedFields are fields the SPEC adds to the document's body.
	specAddedFields []string
	// errorCodeOutsideEnum: the SPEC mandates this errorCode here and the
	// document's errorCode enum for the status lacks it, so the body
	// cannot validate. The status and the headers are validated, the body
	// is checked to be exactly {"errorCode": <this>}, and the case fails
	// once the document's enum has the code (then the body is validated).
	errorCodeOutsideEnum string
	check                func(t *testing.T, body map[string]any)
}

// checkCase sends tc's request and checks the exchange against the document
// and the SPEC.
func (c *openAPIClient) checkCase(t *testing.T, tc openAPICase) {
	res := c.exchange(t, openAPIExchange{method: tc.method, path: tc.path, body: tc.body,
		omitAPIKey: tc.omitAPIKey, token: tc.token(t)})

	if res.status != tc.status {
		t.Fatalf("%s %s answered %d %s, want %d", tc.method, tc.path, res.status, res.raw, tc.status)
	}
	// SPEC §5: every response carries request-ref, including those
	// (such as the 409 of login) for which the document does not
	// declare it; ValidateResponse checks it where it does.
	if res.header.Get("request-ref") == "" {
		t.Errorf("no request-ref header")
	}

	// The request: conforming requests must validate; the 400 cases
	// must be rejected by the document too when the document can
	// tell (requestBreaksDocument), else they are SPEC rules.
	switch {
	case tc.requestBreaksDocument && res.requestErr == nil:
		t.Errorf("the document accepts this request, yet the case says it breaks it: %s", tc.body)
	case !tc.requestBreaksDocument && res.requestErr != nil:
		t.Errorf("request does not match the document: %v", res.requestErr)
	}

	var obj map[string]any // the body, when it is a JSON object
	if len(res.raw) > 0 {
		var v any
		if err := json.Unmarshal(res.raw, &v); err != nil {
			t.Errorf("body is not JSON: %v: %s", err, res.raw)
		}
		obj, _ = v.(map[string]any)
		if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
	}

	body := res.raw
	schema := responseSchema(res.route, res.status)
	if tc.undeclaredBody {
		if schema != nil {
			t.Errorf("the document now declares a body for %d: drop undeclaredBody so it is checked", res.status)
		}
		if obj == nil {
			t.Errorf("SPEC §5 wants a JSON error body, got %q", res.raw)
		}
	}
	if tc.status == http.StatusNoContent && len(res.raw) != 0 {
		t.Errorf("204 with a body: %s", res.raw)
	}
	for _, field := range tc.specAddedFields {
		if _, ok := obj[field]; !ok {
			t.Errorf("SPEC §5 adds %q to this body, and it is missing: %s", field, res.raw)
		}
	}
	// The SPEC adds fields (status on access_token). The document's
	// schema there does not forbid additional properties, so they are
	// validated as sent; should it ever forbid them, strip only those
	// fields before validating.
	if len(tc.specAddedFields) > 0 && forbidsAdditionalProperties(schema) {
		stripped := make(map[string]any, len(obj))
		for k, v := range obj {
			stripped[k] = v
		}
		for _, field := range tc.specAddedFields {
			delete(stripped, field)
		}
		var err error
		if body, err = json.Marshal(stripped); err != nil {
			t.Fatal(err)
		}
	}

	opts := openAPIOptions
	if code := tc.errorCodeOutsideEnum; code != "" {
		// The body cannot validate: check what the SPEC says of it, that
		// the document still lacks the code, and the rest without the body.
		if got, _ := obj["errorCode"].(string); got != code || len(obj) != 1 {
			t.Errorf("body %s, want {\"errorCode\":%q} (SPEC §5)", res.raw, code)
		}
		switch enum, ok := errorCodeEnum(schema); {
		case !ok:
			t.Errorf("the document declares no errorCode enum for %d: drop errorCodeOutsideEnum so the body is validated", res.status)
		case slices.Contains(enum, code):
			t.Errorf("the document's errorCode enum for %d now has %s: drop errorCodeOutsideEnum so the body is validated", res.status, code)
		}
		withoutBody := *openAPIOptions
		withoutBody.ExcludeResponseBody = true
		opts = &withoutBody
	}
	if err := c.validateResponseWith(res, body, opts); err != nil {
		t.Errorf("%d response does not match the document (operation %s): %v\nbody: %s",
			res.status, res.route.Operation.OperationID, err, res.raw)
	}
	if tc.check != nil && obj != nil {
		tc.check(t, obj)
	}
}

func TestMultiRoutesMatchTheOpenAPIDocument(t *testing.T) {
	doc := loadMultiOpenAPI(t)

	// The requests below carry the headers of the document's security
	// schemes: make sure the document still names them that way.
	schemes := doc.Components.SecuritySchemes
	if s := schemes["api_key"]; s == nil || s.Value.Type != "apiKey" || s.Value.In != "header" || s.Value.Name != "api-key" {
		t.Fatalf("the document's api_key security scheme is no longer an api-key header: %+v", s)
	}
	if s := schemes["auth_token"]; s == nil || s.Value.Type != "http" || !strings.EqualFold(s.Value.Scheme, "bearer") {
		t.Fatalf("the document's auth_token security scheme is no longer an HTTP bearer token: %+v", s)
	}

	srv := newOpenAPITestServer(t)
	// Route the document's operations to the test server instead of the
	// Weavr sandbox it names.
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("building a router from the document: %v", err)
	}
	c := &openAPIClient{srv: srv, router: router}

	const (
		alice     = `{"email":"alice@example.com","password":{"value":"` + openAPITestPassword + `"}}`
		carol     = `{"email":"carol@example.com","password":{"value":"` + openAPITestPassword + `"}}`
		wrongPass = `{"email":"alice@example.com","password":{"value":"Wrong-Horse-1"}}`
		nobody    = `{"email":"nobody@example.com","password":{"value":"` + openAPITestPassword + `"}}`
		corporate = `{"identity":{"type":"CORPORATE","id":"3001"}}`
		notAlices = `{"identity":{"type":"CONSUMER","id":"9999"}}`
	)

	none := tokenFunc(func(*testing.T) string { return "" })
	fixed := func(tok string) tokenFunc { return func(*testing.T) string { return tok } }

	cases := []openAPICase{
		// POST /login_with_password
		{name: "login_with_password/200 returns an AUTH token", method: "POST", path: "/login_with_password", body: alice, token: none, status: 200,
			check: func(t *testing.T, b map[string]any) {
				if b["tokenType"] != "AUTH" {
					t.Errorf("tokenType %v, want AUTH", b["tokenType"])
				}
			}},
		{name: "login_with_password/400 when email is missing", method: "POST", path: "/login_with_password", body: `{"password":{"value":"x"}}`, token: none, status: 400,
			requestBreaksDocument: true},
		{name: "login_with_password/400 when password is missing", method: "POST", path: "/login_with_password", body: `{"email":"alice@example.com"}`, token: none, status: 400,
			requestBreaksDocument: true},
		{name: "login_with_password/400 when email is empty", method: "POST", path: "/login_with_password", body: `{"email":"","password":{"value":"x"}}`, token: none, status: 400},
		{name: "login_with_password/400 when the body is not JSON", method: "POST", path: "/login_with_password", body: `{"email":`, token: none, status: 400,
			requestBreaksDocument: true},
		{name: "login_with_password/400 when email is not a string", method: "POST", path: "/login_with_password", body: `{"email":12,"password":{"value":"x"}}`, token: none, status: 400},
		{name: "login_with_password/400 when the api-key header is missing", method: "POST", path: "/login_with_password", body: alice, omitAPIKey: true, token: none, status: 400},
		// The document's 403 has a description and no content.
		{name: "login_with_password/403 on a wrong password", method: "POST", path: "/login_with_password", body: wrongPass, token: none, status: 403,
			undeclaredBody: true},
		{name: "login_with_password/403 on an unknown email", method: "POST", path: "/login_with_password", body: nobody, token: none, status: 403,
			undeclaredBody: true},
		{name: "login_with_password/409 returns a password-update token when the password expired", method: "POST", path: "/login_with_password", body: carol, token: none, status: 409},

		// GET /identities
		{name: "identities/200 lists the user's identities with an AUTH token", method: "GET", path: "/identities", token: c.authToken, status: 200},
		{name: "identities/200 lists the user's identities with an ACCESS token", method: "GET", path: "/identities", token: c.accessToken, status: 200},
		// The document's 401 (Unauthorized) declares no content.
		{name: "identities/401 without a token", method: "GET", path: "/identities", token: none, status: 401, undeclaredBody: true},
		{name: "identities/401 with a forged token", method: "GET", path: "/identities", token: fixed("not-a-token"), status: 401, undeclaredBody: true},
		{name: "identities/401 with a logged-out token", method: "GET", path: "/identities", token: c.loggedOutToken, status: 401, undeclaredBody: true},
		{name: "identities/401 with a password-update token", method: "GET", path: "/identities", token: c.passwordUpdateToken, status: 401, undeclaredBody: true},

		// POST /access_token
		{name: "access_token/200 returns an ACCESS token for one of the user's identities", method: "POST", path: "/access_token", body: corporate, token: c.authToken, status: 200,
			specAddedFields: []string{"status"},
			check: func(t *testing.T, b map[string]any) {
				if b["status"] != "STANDARD" && b["status"] != "STEPPED_UP" {
					t.Errorf("status %v, want STANDARD or STEPPED_UP (SPEC §5)", b["status"])
				}
			}},
		{name: "access_token/400 when identity is missing", method: "POST", path: "/access_token", body: `{}`, token: c.authToken, status: 400,
			requestBreaksDocument: true},
		{name: "access_token/400 when the identity type is unknown", method: "POST", path: "/access_token", body: `{"identity":{"type":"ADMIN","id":"1"}}`, token: c.authToken, status: 400,
			requestBreaksDocument: true},
		{name: "access_token/400 when the identity id is not digits", method: "POST", path: "/access_token", body: `{"identity":{"type":"CONSUMER","id":"x1"}}`, token: c.authToken, status: 400,
			requestBreaksDocument: true},
		{name: "access_token/400 when identity is not an object", method: "POST", path: "/access_token", body: `{"identity":"x"}`, token: c.authToken, status: 400},
		{name: "access_token/401 without a token", method: "POST", path: "/access_token", body: corporate, token: none, status: 401, undeclaredBody: true},
		// The document's 403 has a description and no content.
		{name: "access_token/403 for an identity that is not the user's", method: "POST", path: "/access_token", body: notAlices, token: c.authToken, status: 403,
			undeclaredBody: true},

		// POST /logout
		{name: "logout/204 ends the session", method: "POST", path: "/logout", token: c.authToken, status: 204},
		{name: "logout/401 without a token", method: "POST", path: "/logout", token: none, status: 401, undeclaredBody: true},
		{name: "logout/401 with a logged-out token", method: "POST", path: "/logout", token: c.loggedOutToken, status: 401, undeclaredBody: true},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { c.checkCase(t, tc) })
	}
}

// TestOpenAPICheckRejectsBodiesTheDocumentForbids guards the test above
// against passing vacuously: the document's schemas carry no "type"
// keywords, so this shows that the enums, patterns, required fields and
// headers it does declare are enforced on responses.
func TestOpenAPICheckRejectsBodiesTheDocumentForbids(t *testing.T) {
	doc := loadMultiOpenAPI(t)
	const server = "http://multi.test"
	doc.Servers = openapi3.Servers{{URL: server}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("building a router from the document: %v", err)
	}
	cases := []struct {
		name, method, path string
		status             int
		body               string
		omitRequestRef     bool
		want               string // part of the expected error
	}{
		{name: "400 with an error code outside SyntaxError's enum", method: "POST", path: "/login_with_password", status: 400,
			body: `{"message":"x","syntaxErrors":{"invalidFields":[{"params":[],"fieldName":"email","error":"INVALID"}]}}`, want: "invalidFields/0/error"},
		{name: "400 with a message longer than 255", method: "POST", path: "/login_with_password", status: 400,
			body: `{"message":"` + strings.Repeat("m", 256) + `"}`, want: "message"},
		{name: "200 login with an unknown tokenType", method: "POST", path: "/login_with_password", status: 200,
			body: `{"token":"t","tokenType":"PASSWORD_UPDATE","identity":{"type":"CONSUMER","id":"1"},"credentials":{"type":"ROOT","id":"1"}}`, want: "tokenType"},
		{name: "200 login with a non-digit credentials id", method: "POST", path: "/login_with_password", status: 200,
			body: `{"token":"t","tokenType":"AUTH","identity":{"type":"CONSUMER","id":"1"},"credentials":{"type":"ROOT","id":"u1"}}`, want: "credentials/id"},
		{name: "200 identities without a name", method: "GET", path: "/identities", status: 200,
			body: `[{"id":{"type":"CONSUMER","id":"1"}}]`, want: "name"},
		{name: "200 access_token without identity.type", method: "POST", path: "/access_token", status: 200,
			body: `{"token":"t","identity":{"id":"1"},"credentials":{"type":"ROOT","id":"1"}}`, want: "type"},
		{name: "200 without the request-ref header", method: "GET", path: "/identities", status: 200,
			body: `[]`, omitRequestRef: true, want: "request-ref"},
		{name: "409 step-up issue with an errorCode outside its enum", method: "POST", path: "/stepup/challenges/otp/SMS", status: 409,
			body: `{"errorCode":"RETRY_IN_15SEC"}`, want: "errorCode"},
		{name: "409 step-up verify with an errorCode outside its enum", method: "POST", path: "/stepup/challenges/otp/SMS/verify", status: 409,
			body: `{"errorCode":"ALREADY_VERIFIED"}`, want: "errorCode"},
		{name: "200 push challenge with a non-digit id", method: "POST", path: "/stepup/challenges/push/AUTHY", status: 200,
			body: `{"id":"p-1"}`, want: "id"},
		{name: "200 factors with an unknown status", method: "GET", path: "/authentication_factors", status: 200,
			body: `{"factors":[{"type":"OTP","status":"PENDING","channel":"SMS"}]}`, want: "status"},
		{name: "403 push enrolment with another errorCode", method: "POST", path: "/authentication_factors/push/AUTHY", status: 403,
			body: `{"errorCode":"ACCESS_TOKEN_REQUIRED"}`, want: "errorCode"},
		{name: "409 OTP enrolment verify with STATE_INVALID", method: "POST", path: "/authentication_factors/otp/SMS/verify", status: 409,
			body: `{"errorCode":"STATE_INVALID"}`, want: "errorCode"},
		{name: "204 step-up issue without the request-ref header", method: "POST", path: "/stepup/challenges/otp/SMS", status: 204,
			omitRequestRef: true, want: "request-ref"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, server+tc.path, http.NoBody)
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatal(err)
			}
			header := http.Header{"Content-Type": {"application/json"}}
			if !tc.omitRequestRef {
				header.Set("request-ref", "ref")
			}
			err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
				RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: openAPIOptions},
				Status:                 tc.status,
				Header:                 header,
				Body:                   io.NopCloser(strings.NewReader(tc.body)),
				Options:                openAPIOptions,
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ValidateResponse(%s) = %v, want an error about %q", tc.body, err, tc.want)
			}
		})
	}
}

// The step-up and factor routes the document has. The SPEC adds others
// (GET /stepup/challenges/push/{channel}/{id}, .../resolve and the
// simulator) that the document lacks, so they are not checked here; they
// are used only to set up state.

// openAPIClock is a clock the step-up cases move forward, past the resend
// interval or a code's life, without sleeping.
type openAPIClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *openAPIClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *openAPIClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

const openAPIBlankUsers = 40

// newOpenAPIStepUpServer serves the Multi API in sandbox mode (every code
// is 123456) on a clock the test moves, with alice (SMS and AUTHY
// enrolled), bob (a phone, no factors), dave (no phone) and blank users
// blank<N>@example.com (a phone, no factors) for cases that enrol.
func newOpenAPIStepUpServer(t *testing.T) (*httptest.Server, *openAPIClock) {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte(openAPITestPassword), bcrypt.MinCost)
	list := []authcore.User{
		{ID: "1001", CredentialsType: "ROOT", Email: "alice@example.com", Password: string(hash), TextNumber: "+35699000001",
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001", Name: "Alice"}},
			Factors:    authcore.Factors{OTP: []string{"SMS"}, Push: []string{"AUTHY"}}},
		{ID: "1002", CredentialsType: "USER", Email: "bob@example.com", Password: string(hash), Phone: "+35699000002",
			Identities: []authcore.Identity{{Type: "CORPORATE", ID: "3001", Name: "Bob Ltd"}}},
		{ID: "1003", CredentialsType: "USER", Email: "dave@example.com", Password: string(hash),
			Identities: []authcore.Identity{{Type: "CORPORATE", ID: "3002", Name: "Dave Ltd"}}},
	}
	for i := range openAPIBlankUsers {
		list = append(list, authcore.User{ID: fmt.Sprint(1100 + i), CredentialsType: "USER",
			Email: fmt.Sprintf("blank%d@example.com", i), Password: string(hash), Phone: fmt.Sprintf("+356990011%02d", i),
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: fmt.Sprint(2100 + i), Name: "Blank"}}})
	}
	users, err := authcore.NewStaticUsers(list)
	if err != nil {
		t.Fatal(err)
	}
	clock := &openAPIClock{}
	store := memory.New(clock.Now)
	t.Cleanup(func() { store.Close() })
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	gw, err := authcore.New(authcore.Options{Store: store, Users: users, Now: clock.Now,
		Tokens: authcore.NewTokens("test", key, clock.Now), PasswordHash: testHashParams,
		RateLimits: map[string]authcore.RateLimit{}, Sandbox: true, PushSecret: []byte("openapi-push-secret"),
		// Sessions outlive the clock's jumps.
		SessionIdle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(multiapi.New(multiapi.Options{Sessions: gw.Sessions, Accounts: gw.Accounts, Passwords: gw.Passwords,
		StepUp: gw.StepUp, Tokens: gw.Tokens, Logger: gw.Logger, APIKeys: []string{openAPITestAPIKey}}))
	t.Cleanup(srv.Close)
	return srv, clock
}

// stepUpSetup drives the API, without checking it against the document,
// to put a session in the state a case needs.
type stepUpSetup struct {
	c      *openAPIClient
	clock  *openAPIClock
	blanks int
}

// call sends a request (documented or not) and fails the test unless it
// answers want.
func (s *stepUpSetup) call(t *testing.T, method, path, token, body string, want int) []byte {
	t.Helper()
	resp, err := http.DefaultClient.Do(s.c.newRequest(t, openAPIExchange{method: method, path: path, body: body, token: token}))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("setup: %s %s: %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	return raw
}

func (s *stepUpSetup) login(email string) tokenFunc {
	return func(t *testing.T) string { return s.c.loginToken(t, email, http.StatusOK) }
}

// blank logs a user in who has a phone and no factor, a new one each time.
func (s *stepUpSetup) blank(t *testing.T) string {
	if s.blanks == openAPIBlankUsers {
		t.Fatal("setup: out of blank users")
	}
	s.blanks++
	return s.c.loginToken(t, fmt.Sprintf("blank%d@example.com", s.blanks-1), http.StatusOK)
}

// then runs steps on the session tok returns.
func (s *stepUpSetup) then(tok tokenFunc, steps ...func(t *testing.T, token string)) tokenFunc {
	return func(t *testing.T) string {
		token := tok(t)
		for _, step := range steps {
			step(t, token)
		}
		return token
	}
}

func (s *stepUpSetup) post(path, body string, want int) func(*testing.T, string) {
	return func(t *testing.T, token string) { s.call(t, "POST", path, token, body, want) }
}

func (s *stepUpSetup) wait(d time.Duration) func(*testing.T, string) {
	return func(*testing.T, string) { s.clock.Advance(d) }
}

// pushSteppedUp issues a push and has the simulator approve it.
func (s *stepUpSetup) pushSteppedUp(t *testing.T, token string) {
	var issued struct{ ID string }
	if err := json.Unmarshal(s.call(t, "POST", "/stepup/challenges/push/AUTHY", token, "", http.StatusOK), &issued); err != nil {
		t.Fatal(err)
	}
	s.call(t, "POST", "/simulate/api/factors/1001/challenges/"+issued.ID+"/verify_success", "", "", http.StatusOK)
}

func TestStepUpAndFactorRoutesMatchTheOpenAPIDocument(t *testing.T) {
	doc := loadMultiOpenAPI(t)
	srv, clock := newOpenAPIStepUpServer(t)
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("building a router from the document: %v", err)
	}
	c := &openAPIClient{srv: srv, router: router}
	s := &stepUpSetup{c: c, clock: clock}

	const (
		right      = `{"verificationCode":"123456"}` // sandbox
		wrong      = `{"verificationCode":"000000"}`
		stepUpOTP  = "/stepup/challenges/otp/SMS"
		stepUpOK   = "/stepup/challenges/otp/SMS/verify"
		enrolOTP   = "/authentication_factors/otp/SMS"
		enrolOK    = "/authentication_factors/otp/SMS/verify"
		pastResend = authcore.DefaultResendInterval + time.Second
		pastTTL    = authcore.DefaultCodeTTL + time.Second
	)
	none := tokenFunc(func(*testing.T) string { return "" })
	alice, bob, dave := s.login("alice@example.com"), s.login("bob@example.com"), s.login("dave@example.com")
	blank := tokenFunc(s.blank)
	aliceIssued := s.then(alice, s.post(stepUpOTP, "", 204))
	aliceSteppedUp := s.then(aliceIssued, s.post(stepUpOK, right, 204))
	blankEnrolling := s.then(blank, s.post(enrolOTP, "", 204))
	blankSteppedUp := s.then(blankEnrolling, s.post(enrolOK, right, 204))
	wrongTimes := func(n int, path string) []func(*testing.T, string) {
		steps := make([]func(*testing.T, string), n)
		for i := range steps {
			steps[i] = s.post(path, wrong, 409)
		}
		return steps
	}
	digitID := func(t *testing.T, b map[string]any) {
		if id, _ := b["id"].(string); !digits.MatchString(id) {
			t.Errorf("id %v, want digits", b["id"])
		}
	}
	factors := func(want string) func(*testing.T, map[string]any) {
		return func(t *testing.T, b map[string]any) {
			if got, _ := json.Marshal(b); string(got) != want {
				t.Errorf("body %s, want %s", got, want)
			}
		}
	}

	cases := []openAPICase{
		// POST /stepup/challenges/otp/{channel}
		{name: "stepup otp/204 sends a code", method: "POST", path: stepUpOTP, token: alice, status: 204},
		{name: "stepup otp/400 for the EMAIL channel", method: "POST", path: "/stepup/challenges/otp/EMAIL", token: alice, status: 400,
			requestBreaksDocument: true},
		{name: "stepup otp/401 without a token", method: "POST", path: stepUpOTP, token: none, status: 401, undeclaredBody: true},
		{name: "stepup otp/409 CHANNEL_NOT_REGISTERED", method: "POST", path: stepUpOTP, token: bob, status: 409},
		// SPEC §5 codes the document's StepUpSCAChallengeConflict lacks:
		// status and headers only.
		{name: "stepup otp/409 RETRY_IN_15SEC", method: "POST", path: stepUpOTP, token: aliceIssued, status: 409,
			errorCodeOutsideEnum: "RETRY_IN_15SEC"},
		{name: "stepup otp/409 CHALLENGE_LIMIT_EXCEEDED after the one resend", method: "POST", path: stepUpOTP, status: 409,
			token:                s.then(aliceIssued, s.wait(pastResend), s.post(stepUpOTP, "", 204), s.wait(pastResend)),
			errorCodeOutsideEnum: "CHALLENGE_LIMIT_EXCEEDED"},

		// POST /stepup/challenges/otp/{channel}/verify
		{name: "stepup otp verify/204 steps the session up", method: "POST", path: stepUpOK, body: right, token: aliceIssued, status: 204},
		{name: "stepup otp verify/400 when verificationCode is missing", method: "POST", path: stepUpOK, body: `{}`, token: aliceIssued, status: 400,
			requestBreaksDocument: true},
		{name: "stepup otp verify/400 when the body is not JSON", method: "POST", path: stepUpOK, body: `{"verificationCode":`, token: aliceIssued, status: 400,
			requestBreaksDocument: true},
		{name: "stepup otp verify/400 when verificationCode is not a string", method: "POST", path: stepUpOK, body: `{"verificationCode":123456}`, token: aliceIssued, status: 400},
		{name: "stepup otp verify/400 for the EMAIL channel", method: "POST", path: "/stepup/challenges/otp/EMAIL/verify", body: right, token: aliceIssued, status: 400,
			requestBreaksDocument: true},
		{name: "stepup otp verify/401 without a token", method: "POST", path: stepUpOK, body: right, token: none, status: 401, undeclaredBody: true},
		{name: "stepup otp verify/409 VERIFICATION_CODE_INVALID", method: "POST", path: stepUpOK, body: wrong, token: aliceIssued, status: 409},
		{name: "stepup otp verify/409 STATE_INVALID when no code was issued", method: "POST", path: stepUpOK, body: right, token: alice, status: 409},
		{name: "stepup otp verify/409 VERIFICATION_CODE_EXPIRED", method: "POST", path: stepUpOK, body: right, status: 409,
			token: s.then(aliceIssued, s.wait(pastTTL))},
		{name: "stepup otp verify/409 CHANNEL_NOT_REGISTERED", method: "POST", path: stepUpOK, body: right, token: bob, status: 409},
		{name: "stepup otp verify/409 STATE_INVALID after five wrong codes", method: "POST", path: stepUpOK, body: right, status: 409,
			token: s.then(aliceIssued, wrongTimes(5, stepUpOK)...)},
		// SPEC §5 codes the document's StepUpSCAVerifyConflict lacks:
		// status and headers only.
		{name: "stepup otp verify/409 ONE_CHALLENGE_LIMIT_REMAINING on the 4th wrong code", method: "POST", path: stepUpOK, body: wrong, status: 409,
			token: s.then(aliceIssued, wrongTimes(3, stepUpOK)...), errorCodeOutsideEnum: "ONE_CHALLENGE_LIMIT_REMAINING"},
		{name: "stepup otp verify/409 CHALLENGE_LIMIT_EXCEEDED on the 5th wrong code", method: "POST", path: stepUpOK, body: wrong, status: 409,
			token: s.then(aliceIssued, wrongTimes(4, stepUpOK)...), errorCodeOutsideEnum: "CHALLENGE_LIMIT_EXCEEDED"},
		{name: "stepup otp verify/409 ALREADY_VERIFIED", method: "POST", path: stepUpOK, body: right, token: aliceSteppedUp, status: 409,
			errorCodeOutsideEnum: "ALREADY_VERIFIED"},

		// POST /stepup/challenges/push/{channel}
		{name: "stepup push/200 returns the challenge id", method: "POST", path: "/stepup/challenges/push/AUTHY", token: alice, status: 200,
			check: digitID},
		{name: "stepup push/400 for the SMS channel", method: "POST", path: "/stepup/challenges/push/SMS", token: alice, status: 400,
			requestBreaksDocument: true},
		{name: "stepup push/401 without a token", method: "POST", path: "/stepup/challenges/push/AUTHY", token: none, status: 401, undeclaredBody: true},
		{name: "stepup push/409 CHANNEL_NOT_REGISTERED", method: "POST", path: "/stepup/challenges/push/BIOMETRIC", token: alice, status: 409},
		{name: "stepup push/409 STATE_INVALID once a push stepped the session up", method: "POST", path: "/stepup/challenges/push/AUTHY", status: 409,
			token: s.then(alice, s.pushSteppedUp)},
		{name: "stepup push/409 CHALLENGE_LIMIT_EXCEEDED after two pushes", method: "POST", path: "/stepup/challenges/push/AUTHY", status: 409,
			token: s.then(alice, s.post("/stepup/challenges/push/AUTHY", "", 200), s.post("/stepup/challenges/push/AUTHY", "", 200))},

		// GET /authentication_factors
		{name: "authentication_factors/200 lists the factors", method: "GET", path: "/authentication_factors", token: alice, status: 200,
			check: factors(`{"factors":[{"channel":"SMS","status":"ACTIVE","type":"OTP"},{"channel":"AUTHY","status":"ACTIVE","type":"PUSH"}]}`)},
		{name: "authentication_factors/200 lists a pending enrolment", method: "GET", path: "/authentication_factors", token: blankEnrolling, status: 200,
			check: factors(`{"factors":[{"channel":"SMS","status":"PENDING_VERIFICATION","type":"OTP"}]}`)},
		{name: "authentication_factors/200 with no factor", method: "GET", path: "/authentication_factors", token: bob, status: 200,
			check: factors(`{"factors":[]}`)},
		{name: "authentication_factors/401 without a token", method: "GET", path: "/authentication_factors", token: none, status: 401, undeclaredBody: true},

		// POST /authentication_factors/otp/{channel}
		{name: "enrol otp/204 sends a code", method: "POST", path: enrolOTP, token: blank, status: 204},
		{name: "enrol otp/400 for the EMAIL channel", method: "POST", path: "/authentication_factors/otp/EMAIL", token: blank, status: 400,
			requestBreaksDocument: true},
		{name: "enrol otp/401 without a token", method: "POST", path: enrolOTP, token: none, status: 401, undeclaredBody: true},
		{name: "enrol otp/409 CHANNEL_ALREADY_REGISTERED", method: "POST", path: enrolOTP, token: alice, status: 409},
		{name: "enrol otp/409 MOBILE_NUMBER_NOT_AVAILABLE", method: "POST", path: enrolOTP, token: dave, status: 409},
		// SPEC §5: "code errors as for step-up"; the document's
		// EnrolDeviceUsingOtpStepOneConflict lacks it: status and headers only.
		{name: "enrol otp/409 RETRY_IN_15SEC", method: "POST", path: enrolOTP, token: blankEnrolling, status: 409,
			errorCodeOutsideEnum: "RETRY_IN_15SEC"},

		// POST /authentication_factors/otp/{channel}/verify
		{name: "enrol otp verify/204 activates the factor", method: "POST", path: enrolOK, body: right, token: blankEnrolling, status: 204},
		{name: "enrol otp verify/400 when verificationCode is missing", method: "POST", path: enrolOK, body: `{}`, token: blankEnrolling, status: 400,
			requestBreaksDocument: true},
		{name: "enrol otp verify/401 without a token", method: "POST", path: enrolOK, body: right, token: none, status: 401, undeclaredBody: true},
		{name: "enrol otp verify/409 CHANNEL_ALREADY_REGISTERED", method: "POST", path: enrolOK, body: right, token: alice, status: 409},
		{name: "enrol otp verify/409 VERIFICATION_CODE_INVALID", method: "POST", path: enrolOK, body: wrong, token: blankEnrolling, status: 409},
		{name: "enrol otp verify/409 VERIFICATION_CODE_EXPIRED", method: "POST", path: enrolOK, body: right, status: 409,
			token: s.then(blankEnrolling, s.wait(pastTTL))},
		// SPEC §5 code errors as for step-up, which the document's
		// EnrolDeviceUsingOtpStepTwoConflict lacks: status and headers only.
		{name: "enrol otp verify/409 STATE_INVALID when enrolment was not started", method: "POST", path: enrolOK, body: right, token: blank, status: 409,
			errorCodeOutsideEnum: "STATE_INVALID"},
		{name: "enrol otp verify/409 ONE_CHALLENGE_LIMIT_REMAINING on the 4th wrong code", method: "POST", path: enrolOK, body: wrong, status: 409,
			token: s.then(blankEnrolling, wrongTimes(3, enrolOK)...), errorCodeOutsideEnum: "ONE_CHALLENGE_LIMIT_REMAINING"},
		{name: "enrol otp verify/409 CHALLENGE_LIMIT_EXCEEDED on the 5th wrong code", method: "POST", path: enrolOK, body: wrong, status: 409,
			token: s.then(blankEnrolling, wrongTimes(4, enrolOK)...), errorCodeOutsideEnum: "CHALLENGE_LIMIT_EXCEEDED"},

		// POST /authentication_factors/push/{channel}
		{name: "enrol push/204 on a stepped-up session", method: "POST", path: "/authentication_factors/push/AUTHY", token: blankSteppedUp, status: 204},
		{name: "enrol push/400 for the SMS channel", method: "POST", path: "/authentication_factors/push/SMS", token: blankSteppedUp, status: 400,
			requestBreaksDocument: true},
		{name: "enrol push/401 without a token", method: "POST", path: "/authentication_factors/push/AUTHY", token: none, status: 401, undeclaredBody: true},
		{name: "enrol push/403 STEP_UP_REQUIRED", method: "POST", path: "/authentication_factors/push/AUTHY", token: blank, status: 403},
		{name: "enrol push/409 CHANNEL_ALREADY_REGISTERED", method: "POST", path: "/authentication_factors/push/AUTHY", token: aliceSteppedUp, status: 409},

		// DELETE /authentication_factors/push/{channel}
		{name: "unlink push/204 removes the channel", method: "DELETE", path: "/authentication_factors/push/BIOMETRIC", status: 204,
			token: s.then(blankSteppedUp, s.post("/authentication_factors/push/BIOMETRIC", "", 204))},
		{name: "unlink push/400 for the SMS channel", method: "DELETE", path: "/authentication_factors/push/SMS", token: bob, status: 400,
			requestBreaksDocument: true},
		{name: "unlink push/401 without a token", method: "DELETE", path: "/authentication_factors/push/AUTHY", token: none, status: 401, undeclaredBody: true},
		{name: "unlink push/409 CHANNEL_NOT_REGISTERED", method: "DELETE", path: "/authentication_factors/push/AUTHY", token: bob, status: 409},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { c.checkCase(t, tc) })
	}
}
