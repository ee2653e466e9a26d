package httpapi

import (
	"net/http"
	"path"
	"strings"
)

// Routes is a table of method-specific routes ("POST /logout") over
// http.ServeMux that answers everything else in the API's own shape: a
// path no route has, and a path ServeMux would redirect to its clean form
// (//logout, /a/../logout), with NotFound; a route's path with another
// method with MethodNotAllowed, after setting Allow.
type Routes struct {
	mux              *http.ServeMux
	allowed          map[string][]string // path -> methods, for Allow
	methodNotAllowed http.HandlerFunc
	notFound         http.HandlerFunc
}

// NewRoutes returns an empty table with the answers of its API.
func NewRoutes(notFound, methodNotAllowed http.HandlerFunc) *Routes {
	rt := &Routes{mux: http.NewServeMux(), allowed: map[string][]string{},
		notFound: notFound, methodNotAllowed: methodNotAllowed}
	rt.mux.HandleFunc("/", notFound)
	return rt
}

// Handle registers fn for pattern, "METHOD /path" as ServeMux reads it.
func (rt *Routes) Handle(pattern string, fn http.HandlerFunc) {
	rt.mux.HandleFunc(pattern, fn)
	method, path, _ := strings.Cut(pattern, " ")
	if _, seen := rt.allowed[path]; !seen {
		rt.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(rt.allowed[path], ", "))
			rt.methodNotAllowed(w, r)
		})
	}
	rt.allowed[path] = append(rt.allowed[path], method)
}

// ServeHTTP implements http.Handler.
func (rt *Routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// ServeMux would answer such a path with a bare redirect, outside the
	// API's shape; no route has one.
	if p := r.URL.Path; p != "/" && path.Clean(p) != p {
		rt.notFound(w, r)
		return
	}
	rt.mux.ServeHTTP(w, r)
}
