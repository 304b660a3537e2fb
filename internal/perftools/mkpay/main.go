// Command mkpay creates payments through paymentd's API, 8 at a time, and
// writes whload's -targets file, as perf/compare's setup does.
//
//	mkpay BASE_URL API_KEY COUNT FILE
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"sync"
)

type target struct {
	PaymentID       string `json:"paymentId"`
	PaymentIntentID string `json:"paymentIntentId"`
	Amount          int64  `json:"amount"`
	Currency        string `json:"currency"`
}

func main() {
	if len(os.Args) != 5 {
		log.Fatal("usage: mkpay BASE_URL API_KEY COUNT FILE")
	}
	base, key, out := os.Args[1], os.Args[2], os.Args[4]
	n, err := strconv.Atoi(os.Args[3])
	if err != nil || n < 1 {
		log.Fatal("COUNT must be a positive number")
	}
	lines := make([]target, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cents := 500 + (i*7919)%10000
				body, _ := json.Marshal(map[string]any{"amount": fmt.Sprintf("%d.%02d", cents/100, cents%100), "currency": "usd",
					"description": fmt.Sprintf("ab payment %d", i+1)})
				req, _ := http.NewRequest("POST", base+"/api/payments/payment-intent", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					log.Fatal(err)
				}
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var env struct {
					Data target `json:"data"`
				}
				if resp.StatusCode != http.StatusCreated || json.Unmarshal(raw, &env) != nil || env.Data.Amount != int64(cents) {
					log.Fatalf("payment %d: HTTP %d: %s", i+1, resp.StatusCode, raw)
				}
				lines[i] = env.Data
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	var buf bytes.Buffer
	for _, l := range lines {
		b, _ := json.Marshal(l)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
