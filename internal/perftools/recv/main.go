// Command recv is a callback receiver for ab.sh: it answers 200 to every
// request, as perf/compare's receiver does.
package main

import (
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	log.Fatal(http.ListenAndServe(os.Args[1], http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	})))
}
