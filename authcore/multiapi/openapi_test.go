package multiapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
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
	openAPITestPassword = "Correct-Horse-1"
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
// declares on every route, and two users: alice (ROOT, two identities) and
// carol, whose password has expired.
func newOpenAPITestServer(t *testing.T) *httptest.Server {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte(openAPITestPassword), bcrypt.MinCost)
	past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	users, err := authcore.NewStaticUsers([]authcore.User{
		{ID: "1001", CredentialsType: "ROOT", Email: "alice@example.com", Password: string(hash),
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2001", Name: "Alice"}, {Type: "CORPORATE", ID: "3001", Name: "Acme"}}},
		{ID: "1003", CredentialsType: "USER", Email: "carol@example.com", Password: string(hash), PasswordExpires: &past,
			Identities: []authcore.Identity{{Type: "CONSUMER", ID: "2003"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	store := memory.New(nil)
	t.Cleanup(func() { store.Close() })
	key, _ := authcore.NewHMACKey([]byte(strings.Repeat("k", 32)))
	gw, err := authcore.NewGateway(authcore.Options{Store: store, Users: users,
		Tokens: authcore.NewTokens("test", key, time.Now), DummyHash: users.DummyHash(),
		RateLimits: map[string]authcore.RateLimit{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(multiapi.New(multiapi.Options{Gateway: gw, APIKeys: []string{openAPITestAPIKey}}))
	t.Cleanup(srv.Close)
	return srv
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
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: res.input,
		Status:                 res.status,
		Header:                 res.header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                openAPIOptions,
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

	type tokenFunc func(*testing.T) string
	none := tokenFunc(func(*testing.T) string { return "" })
	fixed := func(tok string) tokenFunc { return func(*testing.T) string { return tok } }

	cases := []struct {
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
		check           func(t *testing.T, body map[string]any)
	}{
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
		t.Run(tc.name, func(t *testing.T) {
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

			if err := c.validateResponse(res, body); err != nil {
				t.Errorf("%d response does not match the document (operation %s): %v\nbody: %s",
					res.status, res.route.Operation.OperationID, err, res.raw)
			}
			if tc.check != nil && obj != nil {
				tc.check(t, obj)
			}
		})
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
