// ttrpc-peer: the reference Go ttrpc (github.com/containerd/ttrpc, Debian's 1.1.1) as the
// other side of katana's interoperability tests and benchmark.
//
//	ttrpc-peer server --socket PATH
//	ttrpc-peer client --socket PATH --case echo|unimplemented|errors|metadata|deadline|concurrent|big|all
//	ttrpc-peer bench  --socket PATH --callers N --duration 3s --warmup 500ms --payload 64
//
// Service katana.test.Echo, with gogo's well-known wrappers as messages (no code generation):
//
//	Echo     BytesValue  -> BytesValue   the same bytes
//	Fail     StringValue -> (error)      NOT_FOUND "container <value>"
//	Metadata Empty       -> StringValue  value of metadata key containerd-namespace-ttrpc
//	Sleep    UInt32Value -> StringValue  sleeps N ms; "deadline"/"no deadline"; DEADLINE_EXCEEDED
//	Big      UInt32Value -> BytesValue   N bytes of 'x'
//
// The client exits 1 and says why on any mismatch; the server runs until SIGTERM or SIGINT.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	service          = "katana.test.Echo"
	namespaceKey     = "containerd-namespace-ttrpc"
	messageLengthMax = 4 << 20
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = runServer(os.Args[2:])
	case "client":
		err = runClient(os.Args[2:])
	case "bench":
		err = runBench(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ttrpc-peer %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ttrpc-peer server|client|bench --socket PATH [options]")
	os.Exit(2)
}

// ---- server --------------------------------------------------------------------------------

func methods() map[string]ttrpc.Method {
	return map[string]ttrpc.Method{
		"Echo": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var in types.BytesValue
			if err := unmarshal(&in); err != nil {
				return nil, err
			}
			return &types.BytesValue{Value: in.Value}, nil
		},
		"Fail": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var in types.StringValue
			if err := unmarshal(&in); err != nil {
				return nil, err
			}
			return nil, status.Errorf(codes.NotFound, "container %s", in.Value)
		},
		"Metadata": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var in types.Empty
			if err := unmarshal(&in); err != nil {
				return nil, err
			}
			v, ok := ttrpc.GetMetadataValue(ctx, namespaceKey)
			if !ok {
				v = "<none>"
			}
			return &types.StringValue{Value: v}, nil
		},
		"Sleep": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var in types.UInt32Value
			if err := unmarshal(&in); err != nil {
				return nil, err
			}
			t := time.NewTimer(time.Duration(in.Value) * time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, ctx.Err() // ttrpc maps context.DeadlineExceeded to DEADLINE_EXCEEDED
			}
			if _, ok := ctx.Deadline(); ok {
				return &types.StringValue{Value: "deadline"}, nil
			}
			return &types.StringValue{Value: "no deadline"}, nil
		},
		"Big": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var in types.UInt32Value
			if err := unmarshal(&in); err != nil {
				return nil, err
			}
			return &types.BytesValue{Value: bytes.Repeat([]byte{'x'}, int(in.Value))}, nil
		},
	}
}

func runServer(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	socket := fs.String("socket", "", "unix socket path to listen on")
	_ = fs.Parse(args)
	if *socket == "" {
		return errors.New("--socket is required")
	}
	s, err := ttrpc.NewServer()
	if err != nil {
		return err
	}
	s.Register(service, methods())
	l, err := net.Listen("unix", *socket)
	if err != nil {
		return err
	}
	defer os.Remove(*socket)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	served := make(chan error, 1)
	go func() { served <- s.Serve(context.Background(), l) }()
	fmt.Printf("listening on %s\n", *socket)

	select {
	case <-sigs:
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			_ = s.Close()
		}
		return nil
	case err := <-served:
		if errors.Is(err, ttrpc.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// ---- client --------------------------------------------------------------------------------

type checker struct {
	mu       sync.Mutex
	failures []string
}

func (c *checker) fail(format string, args ...interface{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

// expectStatus checks that err is a ttrpc status with the code and, if msg is not empty, the
// message.
func (c *checker) expectStatus(what string, err error, code codes.Code, msg string) {
	st, ok := status.FromError(err)
	switch {
	case err == nil:
		c.fail("%s: want %v, got success", what, code)
	case !ok:
		c.fail("%s: want status %v, got a non-status error %T: %v", what, code, err, err)
	case st.Code() != code:
		c.fail("%s: want %v, got %v (%q)", what, code, st.Code(), st.Message())
	case msg != "" && st.Message() != msg:
		c.fail("%s: want message %q, got %q", what, msg, st.Message())
	}
}

func dial(socket string, opts ...ttrpc.ClientOpts) (*ttrpc.Client, error) {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return nil, err
	}
	return ttrpc.NewClient(conn, opts...), nil
}

func callCtx(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), timeout)
}

var cases = map[string]func(c *checker, socket string) error{
	"echo":          caseEcho,
	"unimplemented": caseUnimplemented,
	"errors":        caseErrors,
	"metadata":      caseMetadata,
	"deadline":      caseDeadline,
	"concurrent":    caseConcurrent,
	"big":           caseBig,
}

func runClient(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	socket := fs.String("socket", "", "unix socket path of the server")
	name := fs.String("case", "all", "case to run, or all")
	_ = fs.Parse(args)
	if *socket == "" {
		return errors.New("--socket is required")
	}
	var names []string
	if *name == "all" {
		for n := range cases {
			names = append(names, n)
		}
		sort.Strings(names)
	} else if _, ok := cases[*name]; ok {
		names = []string{*name}
	} else {
		return fmt.Errorf("unknown case %q", *name)
	}
	failed := 0
	for _, n := range names {
		c := &checker{}
		start := time.Now()
		if err := cases[n](c, *socket); err != nil {
			c.fail("%v", err)
		}
		if len(c.failures) == 0 {
			fmt.Printf("ok   %s (%v)\n", n, time.Since(start).Round(time.Millisecond))
			continue
		}
		failed++
		fmt.Printf("FAIL %s\n", n)
		for _, f := range c.failures {
			fmt.Printf("     %s\n", f)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cases failed", failed, len(names))
	}
	return nil
}

func caseEcho(c *checker, socket string) error {
	cl, err := dial(socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, in := range [][]byte{[]byte("hello"), {}, {0, 1, 2, 0xff, 0x80, 0}, bytes.Repeat([]byte("ab"), 40000)} {
		ctx, cancel := callCtx(5 * time.Second)
		var out types.BytesValue
		err := cl.Call(ctx, service, "Echo", &types.BytesValue{Value: in}, &out)
		cancel()
		if err != nil {
			c.fail("Echo(%d bytes): %v", len(in), err)
		} else if !bytes.Equal(out.Value, in) {
			c.fail("Echo(%d bytes): got %d bytes back, not the same", len(in), len(out.Value))
		}
	}
	return nil
}

func caseUnimplemented(c *checker, socket string) error {
	cl, err := dial(socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := callCtx(5 * time.Second)
	defer cancel()
	var out types.Empty
	c.expectStatus("unknown service", cl.Call(ctx, "no.Such", "Echo", &types.Empty{}, &out),
		codes.Unimplemented, "service no.Such")
	c.expectStatus("unknown method", cl.Call(ctx, service, "Nope", &types.Empty{}, &out),
		codes.Unimplemented, "method Nope")
	return nil
}

func caseErrors(c *checker, socket string) error {
	cl, err := dial(socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := callCtx(5 * time.Second)
	defer cancel()
	var out types.Empty
	c.expectStatus("Fail(x)", cl.Call(ctx, service, "Fail", &types.StringValue{Value: "x"}, &out),
		codes.NotFound, "container x")
	c.expectStatus("Fail(abc)", cl.Call(ctx, service, "Fail", &types.StringValue{Value: "abc"}, &out),
		codes.NotFound, "container abc")
	// The connection is still good after errors.
	var echo types.BytesValue
	if err := cl.Call(ctx, service, "Echo", &types.BytesValue{Value: []byte("ok")}, &echo); err != nil || string(echo.Value) != "ok" {
		c.fail("Echo after errors: %v %q", err, echo.Value)
	}
	return nil
}

func caseMetadata(c *checker, socket string) error {
	cl, err := dial(socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := callCtx(5 * time.Second)
	defer cancel()
	var out types.StringValue
	if err := cl.Call(ctx, service, "Metadata", &types.Empty{}, &out); err != nil {
		c.fail("Metadata without metadata: %v", err)
	} else if out.Value != "<none>" {
		c.fail("Metadata without metadata: got %q, want <none>", out.Value)
	}
	md := ttrpc.MD{}
	md.Set(namespaceKey, "k8s.io")
	md.Set("other-key", "a", "b")
	if err := cl.Call(ttrpc.WithMetadata(ctx, md), service, "Metadata", &types.Empty{}, &out); err != nil {
		c.fail("Metadata: %v", err)
	} else if out.Value != "k8s.io" {
		c.fail("Metadata: got %q, want k8s.io", out.Value)
	}
	return nil
}

func caseDeadline(c *checker, socket string) error {
	// 1. The caller's context expires first (the server sees timeout_nano too).
	cl, err := dial(socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := callCtx(100 * time.Millisecond)
	start := time.Now()
	var out types.StringValue
	err = cl.Call(ctx, service, "Sleep", &types.UInt32Value{Value: 2000}, &out)
	cancel()
	if st, ok := status.FromError(err); !errors.Is(err, context.DeadlineExceeded) &&
		!(ok && st.Code() == codes.DeadlineExceeded) {
		c.fail("Sleep(2000) with a 100 ms deadline: want DeadlineExceeded, got %v", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		c.fail("Sleep(2000) with a 100 ms deadline took %v", d)
	}

	// 2. Only the server knows the deadline (timeout_nano = 100 ms, the caller waits 5 s): the
	// server itself must answer DEADLINE_EXCEEDED.
	shortWire := func(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response,
		_ *ttrpc.UnaryClientInfo, invoker ttrpc.Invoker) error {
		req.TimeoutNano = (100 * time.Millisecond).Nanoseconds()
		return invoker(ctx, req, resp)
	}
	cl2, err := dial(socket, ttrpc.WithUnaryClientInterceptor(shortWire))
	if err != nil {
		return err
	}
	defer cl2.Close()
	ctx, cancel = callCtx(5 * time.Second)
	start = time.Now()
	err = cl2.Call(ctx, service, "Sleep", &types.UInt32Value{Value: 2000}, &out)
	cancel()
	c.expectStatus("Sleep(2000) with timeout_nano=100ms", err, codes.DeadlineExceeded, "")
	if d := time.Since(start); d > 1500*time.Millisecond {
		c.fail("Sleep(2000) with timeout_nano=100ms answered after %v", d)
	}

	// 3. Within the deadline: success, and the handler saw it.
	ctx, cancel = callCtx(5 * time.Second)
	err = cl.Call(ctx, service, "Sleep", &types.UInt32Value{Value: 1}, &out)
	cancel()
	if err != nil || out.Value != "deadline" {
		c.fail("Sleep(1) with a 5 s deadline: %v %q", err, out.Value)
	}
	err = cl.Call(context.Background(), service, "Sleep", &types.UInt32Value{Value: 1}, &out)
	if err != nil || out.Value != "no deadline" {
		c.fail("Sleep(1) without a deadline: %v %q", err, out.Value)
	}
	return nil
}

func caseConcurrent(c *checker, socket string) error {
	cl, err := dial(socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	const n = 64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ctx, cancel := callCtx(10 * time.Second)
			defer cancel()
			// Later callers sleep less, so responses come back out of order.
			var slept types.StringValue
			if err := cl.Call(ctx, service, "Sleep", &types.UInt32Value{Value: uint32((n - i) % 7)}, &slept); err != nil {
				c.fail("caller %d: Sleep: %v", i, err)
				return
			}
			want := fmt.Sprintf("call %d", i)
			var out types.BytesValue
			if err := cl.Call(ctx, service, "Echo", &types.BytesValue{Value: []byte(want)}, &out); err != nil {
				c.fail("caller %d: Echo: %v", i, err)
			} else if string(out.Value) != want {
				c.fail("caller %d: got %q", i, out.Value)
			}
		}(i)
	}
	wg.Wait()
	return nil
}

// requestOverhead is the size of a Request envelope around a BytesValue of n bytes for Echo
// without deadline (timeout_nano) or metadata: service, method and the payload's tag and length prefixes.
func requestOverhead(n int) int {
	varintLen := func(v int) int {
		l := 1
		for v >= 0x80 {
			v >>= 7
			l++
		}
		return l
	}
	inner := 1 + varintLen(n) + n // BytesValue{value = 1}
	return 2 + len(service) + 2 + len("Echo") + 1 + varintLen(inner) + inner - n
}

func caseBig(c *checker, socket string) error {
	cl, err := dial(socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := callCtx(20 * time.Second)
	defer cancel()

	// The largest request that fits in one frame exactly.
	n := messageLengthMax - requestOverhead(messageLengthMax)
	for n+requestOverhead(n) < messageLengthMax {
		n++
	}
	for n+requestOverhead(n) > messageLengthMax {
		n--
	}
	in := bytes.Repeat([]byte{'y'}, n)
	var out types.BytesValue
	// Without a deadline: timeout_nano would add bytes to the envelope.
	if err := cl.Call(context.Background(), service, "Echo", &types.BytesValue{Value: in}, &out); err != nil {
		c.fail("Echo(%d bytes, a %d-byte frame): %v", n, n+requestOverhead(n), err)
	} else if !bytes.Equal(out.Value, in) {
		c.fail("Echo(%d bytes): got %d bytes back", n, len(out.Value))
	}

	// Go 1.1.1 sends an oversized request as is; the server must discard it and answer
	// RESOURCE_EXHAUSTED on that stream, keeping the connection.
	over := bytes.Repeat([]byte{'z'}, messageLengthMax)
	c.expectStatus("Echo(4 MiB + overhead)", cl.Call(ctx, service, "Echo", &types.BytesValue{Value: over}, &out),
		codes.ResourceExhausted, "")

	// A response that would not fit.
	c.expectStatus("Big(4 MiB)", cl.Call(ctx, service, "Big", &types.UInt32Value{Value: messageLengthMax}, &out),
		codes.ResourceExhausted, "")
	if err := cl.Call(ctx, service, "Big", &types.UInt32Value{Value: 1 << 20}, &out); err != nil || len(out.Value) != 1<<20 {
		c.fail("Big(1 MiB): %v, %d bytes", err, len(out.Value))
	}

	if err := cl.Call(ctx, service, "Echo", &types.BytesValue{Value: []byte("after")}, &out); err != nil || string(out.Value) != "after" {
		c.fail("Echo after the oversized ones: %v %q", err, out.Value)
	}
	return nil
}

// ---- bench ---------------------------------------------------------------------------------

type benchResult struct {
	Impl        string  `json:"impl"`
	Callers     int     `json:"callers"`
	PayloadSize int     `json:"payload_bytes"`
	Calls       int     `json:"calls"`
	Seconds     float64 `json:"seconds"`
	CallsPerSec float64 `json:"calls_per_sec"`
	P50Micros   float64 `json:"p50_us"`
	P99Micros   float64 `json:"p99_us"`
	Errors      int     `json:"errors"`
}

func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	socket := fs.String("socket", "", "unix socket path of the server")
	callers := fs.Int("callers", 1, "concurrent callers on the one connection")
	duration := fs.Duration("duration", 3*time.Second, "measured time")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "unmeasured time first")
	payload := fs.Int("payload", 64, "Echo payload size in bytes")
	_ = fs.Parse(args)
	if *socket == "" {
		return errors.New("--socket is required")
	}
	cl, err := dial(*socket)
	if err != nil {
		return err
	}
	defer cl.Close()

	in := &types.BytesValue{Value: bytes.Repeat([]byte{'p'}, *payload)}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		all      []time.Duration
		errCount int
		firstErr error
	)
	begin := time.Now()
	measureFrom := begin.Add(*warmup)
	end := measureFrom.Add(*duration)
	for i := 0; i < *callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			errs := 0
			var ferr error
			var out types.BytesValue
			for {
				t0 := time.Now()
				if t0.After(end) {
					break
				}
				err := cl.Call(context.Background(), service, "Echo", in, &out)
				t1 := time.Now()
				if err != nil {
					errs++
					if ferr == nil {
						ferr = err
					}
				} else if !t0.Before(measureFrom) && !t1.After(end) {
					lat = append(lat, t1.Sub(t0))
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errCount += errs
			if firstErr == nil {
				firstErr = ferr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "ttrpc-peer bench: %d errors, first: %v\n", errCount, firstErr)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p * float64(len(all)-1))
		return float64(all[i].Nanoseconds()) / 1000
	}
	r := benchResult{
		Impl:        "go",
		Callers:     *callers,
		PayloadSize: *payload,
		Calls:       len(all),
		Seconds:     duration.Seconds(),
		CallsPerSec: float64(len(all)) / duration.Seconds(),
		P50Micros:   pct(0.50),
		P99Micros:   pct(0.99),
		Errors:      errCount,
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	fmt.Println(strings.TrimSpace(string(b)))
	return nil
}
