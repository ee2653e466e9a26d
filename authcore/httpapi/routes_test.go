package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/authgate/authgate/authcore/httpapi"
)

// A route table answers its routes, a known path with another method with
// 405 and Allow, and an unknown or unclean path with 404, all in the API's
// own shape.
func TestRoutesAnswerUnknownPathsAndMethods(t *testing.T) {
	rt := httpapi.NewRoutes(
		func(w http.ResponseWriter, _ *http.Request) {
			httpapi.WriteMessage(w, http.StatusNotFound, "no such route")
		},
		func(w http.ResponseWriter, _ *http.Request) {
			httpapi.WriteMessage(w, http.StatusMethodNotAllowed, "method not allowed")
		})
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }
	rt.Handle("POST /logout", ok)
	rt.Handle("DELETE /logout", ok)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"POST", "/logout", http.StatusNoContent, ""},
		{"DELETE", "/logout", http.StatusNoContent, ""},
		{"GET", "/logout", http.StatusMethodNotAllowed, "POST, DELETE"},
		{"POST", "/login", http.StatusNotFound, ""},
		{"POST", "//logout", http.StatusNotFound, ""},
		{"POST", "/a/../logout", http.StatusNotFound, ""},
	} {
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, &http.Request{Method: tc.method, URL: &url.URL{Path: tc.path}, Header: http.Header{}})
		if rec.Code != tc.status || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", tc.method, tc.path, rec.Code, rec.Header().Get("Allow"), tc.status, tc.allow)
		}
		if tc.status >= 400 && rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want JSON", tc.method, tc.path, rec.Header().Get("Content-Type"))
		}
	}
}
