// Command warm sends one GET with each token of a file, so that a gateway
// has seen every live session of the mix row before it is measured, as a
// gateway that has run for a while has: each token verified once and its
// session read once. bench/load/run.sh runs it before the rounds; the cost
// of a token's first verification is measured by the harness's cold-token
// row instead.
//
//	warm -url http://127.0.0.1:8080/api/x -tokens hot.txt -c 64
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "guarded URL to GET (required)")
	file := flag.String("tokens", "", "file of tokens, one a line (required)")
	conns := flag.Int("c", 64, "concurrent connections")
	flag.Parse()
	if *url == "" || *file == "" || *conns < 1 {
		flag.Usage()
		os.Exit(2)
	}
	f, err := os.Open(*file)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *conns},
	}
	tokens := make(chan string, *conns)
	var sent, bad atomic.Int64
	var wg sync.WaitGroup
	for range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tok := range tokens {
				req, err := http.NewRequest(http.MethodGet, *url, nil)
				if err != nil {
					log.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				sent.Add(1)
				if err != nil {
					bad.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 64*1024)
	for sc.Scan() {
		if tok := sc.Text(); tok != "" {
			tokens <- tok
		}
	}
	close(tokens)
	wg.Wait()
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("  warmed %d sessions in %.1fs (%d not answered 200)\n", sent.Load(), time.Since(start).Seconds(), bad.Load())
	if bad.Load() > 0 {
		os.Exit(1)
	}
}
