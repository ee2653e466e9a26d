// Command upstream is the load harness's tiny backend: every request gets
// 200 with a two-byte body, so the proxy in front of it, not the backend,
// is what the harness measures.
//
//	upstream -addr 127.0.0.1:9000
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	body := []byte("ok")
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: *addr, Handler: h}
	log.Fatal(srv.ListenAndServe())
}
