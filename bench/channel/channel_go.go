// SPDX-License-Identifier: MIT
// Channel benchmark, Go peer (bench/run_channel.sh): the same workloads as channel_ours.cpp with
// Go channels and goroutines (GOMAXPROCS: Go's default, one P per CPU).
//
//	channel_go [--quick]
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

// pingpong: with pinned false Go's scheduler may run both goroutines on one thread (no thread is
// crossed); with pinned true each is locked to an OS thread of its own, as two loops are.
func pingpong(rounds int64, pinned bool) float64 {
	ping := make(chan int64, 1)
	pong := make(chan int64, 1)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if pinned {
			runtime.LockOSThread()
		}
		for i := int64(0); i < rounds; i++ {
			pong <- (<-ping) + 1
		}
	}()
	go func() {
		defer wg.Done()
		if pinned {
			runtime.LockOSThread()
		}
		v := int64(0)
		for i := int64(0); i < rounds; i++ {
			ping <- v
			v = <-pong
		}
		if v != rounds {
			fmt.Fprintln(os.Stderr, "pingpong: wrong count")
		}
	}()
	wg.Wait()
	return float64(time.Since(start).Nanoseconds()) / float64(rounds)
}

// throughput: with threads false Go's scheduler places the goroutines (on GOMAXPROCS Ps; a
// woken goroutine usually runs next on the waker's thread, so items mostly change hands without
// crossing threads); with threads true each goroutine is locked to an OS thread of its own, as
// each of our producers and consumers has a loop and a thread of its own.
func throughput(pairs int, items int64, threads bool) float64 {
	ch := make(chan int64, 1024)
	perProducer := items / int64(pairs)
	var producers, consumers sync.WaitGroup
	var mu sync.Mutex
	received := int64(0)
	start := time.Now()
	for p := 0; p < pairs; p++ {
		producers.Add(1)
		go func() {
			defer producers.Done()
			if threads {
				runtime.LockOSThread()
			}
			for i := int64(0); i < perProducer; i++ {
				ch <- i
			}
		}()
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			if threads {
				runtime.LockOSThread()
			}
			n := int64(0)
			for range ch {
				n++
			}
			mu.Lock()
			received += n
			mu.Unlock()
		}()
	}
	producers.Wait()
	close(ch)
	consumers.Wait()
	seconds := time.Since(start).Seconds()
	if received != perProducer*int64(pairs) {
		fmt.Fprintln(os.Stderr, "throughput: lost items")
	}
	return float64(received) / seconds
}

func main() {
	scale := int64(1)
	if len(os.Args) > 1 && os.Args[1] == "--quick" {
		scale = 100
	}
	fmt.Printf("RESULT pingpong_ns %.1f\n", pingpong(200000/scale, true))
	fmt.Printf("RESULT pingpong_one_thread_ns %.1f\n", pingpong(200000/scale, false))
	fmt.Printf("RESULT tput_1x1 %.0f\n", throughput(1, 4000000/scale, false))
	fmt.Printf("RESULT tput_4x4 %.0f\n", throughput(4, 4000000/scale, false))
	fmt.Printf("RESULT tput_1x1_threads %.0f\n", throughput(1, 4000000/scale, true))
	fmt.Printf("RESULT tput_4x4_threads %.0f\n", throughput(4, 4000000/scale, true))
}
