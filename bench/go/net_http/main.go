// net_http: the Go peer of examples/http_hello.c: net/http answering every
// request with the same plaintext body (Date header suppressed, so the
// response carries the same headers as mote's, in net/http's order).
//
//	net_http HOST:PORT
package main

import (
	"fmt"
	"net/http"
	"os"
)

var body = []byte("Hello, World!")

func hello(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain"}
	h["Content-Length"] = []string{"13"}
	h["Date"] = nil
	w.Write(body)
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: net_http HOST:PORT")
		os.Exit(2)
	}
	err := http.ListenAndServe(os.Args[1], http.HandlerFunc(hello))
	fmt.Fprintln(os.Stderr, "net_http:", err)
	os.Exit(1)
}
