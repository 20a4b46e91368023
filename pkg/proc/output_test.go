package proc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStreamKeepsTheLinesOfSeveralChildrenWhole(t *testing.T) {
	var out bytes.Buffer
	stream := NewStream(&out)
	var mu sync.Mutex
	seen := map[string]int{}
	var procs []*Process
	for _, name := range []string{"alpha", "beta"} {
		procs = append(procs, start(t, "chatter", Options{Name: name, Stream: stream, Prefix: name + " | ",
			OnLine: func(line []byte, _ time.Time) {
				mu.Lock()
				defer mu.Unlock()
				seen[name+" "+string(line)]++
			}}))
	}
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			t.Fatalf("%s: %v", p.Name(), err)
		}
	}
	whole := regexp.MustCompile(`^(alpha|beta) \| (out|err) (\d+) (x*)$`)
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2*2*chatterLines {
		t.Fatalf("%d lines on the stream, want %d", len(lines), 2*2*chatterLines)
	}
	for _, l := range lines {
		m := whole.FindStringSubmatch(l)
		if m == nil || fmt.Sprint(len(m[4])) != fmt.Sprint(atoi(m[3])%50) {
			t.Fatalf("line broken up: %q", l)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2*2*chatterLines {
		t.Errorf("OnLine saw %d distinct lines, want %d", len(seen), 2*2*chatterLines)
	}
	for _, p := range procs {
		if n := strings.Count(logged(p), "\n"); n != 2*chatterLines {
			t.Errorf("%s's log holds %d lines, want %d", p.Name(), n, 2*chatterLines)
		}
	}
}

func atoi(s string) int {
	var n int
	_, _ = fmt.Sscan(s, &n)
	return n
}

func TestStreamGetsALastLineWithoutNewline(t *testing.T) {
	var out bytes.Buffer
	p := start(t, "no-newline", Options{Stream: NewStream(&out), Prefix: "p| "})
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "p| last words\n" {
		t.Errorf("stream %q, want the last words as a whole line", out.String())
	}
}

func TestLineWriterSplitsLinesAcrossWrites(t *testing.T) {
	var lines []string
	var stamps []time.Time
	w := &lineWriter{emit: func(line []byte, read time.Time) {
		lines = append(lines, string(line))
		stamps = append(stamps, read)
	}}
	for _, chunk := range []string{"one\ntw", "o\nthree\nfour\n", "tail without newline"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("write %q: %d, %v", chunk, n, err)
		}
	}
	if fmt.Sprint(lines) != "[one two three four]" {
		t.Fatalf("lines %q", lines)
	}
	if !stamps[2].Equal(stamps[3]) {
		t.Error("lines read together got different stamps")
	}
	w.flush()
	if lines[len(lines)-1] != "tail without newline" {
		t.Errorf("flush passed on %q", lines[len(lines)-1])
	}
}

func TestLineWriterPassesOnAnEndlessLineInPieces(t *testing.T) {
	var sizes []int
	w := &lineWriter{emit: func(line []byte, _ time.Time) { sizes = append(sizes, len(line)) }}
	_, _ = w.Write(bytes.Repeat([]byte("y"), 2*maxLine+10))
	_, _ = w.Write([]byte("\n"))
	if fmt.Sprint(sizes) != fmt.Sprint([]int{maxLine, maxLine, 10}) {
		t.Errorf("pieces %v, want two of %d and the rest", sizes, maxLine)
	}
}

func TestPrefixedWritesWholeLines(t *testing.T) {
	var out bytes.Buffer
	w := NewStream(&out).Prefixed("gateway | ")
	for _, chunk := range []string{"first li", "ne\nsecond line\nthi", "rd", " line\n"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	want := "gateway | first line\ngateway | second line\ngateway | third line\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

func TestTailFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	var big strings.Builder
	for i := range 50000 {
		fmt.Fprintf(&big, "line %d\n", i)
	}
	cases := []struct {
		name, path string
		n          int
		want       []string
	}{
		{"last-two", write("short.log", "a\nb\nc\n"), 2, []string{"b", "c"}},
		{"fewer-than-asked", write("one.log", "only"), 5, []string{"only"}},
		{"empty", write("empty.log", ""), 3, nil},
		{"missing", filepath.Join(dir, "none.log"), 3, nil},
		{"larger-than-read", write("big.log", big.String()), 2, []string{"line 49998", "line 49999"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := TailFile(tc.path, tc.n); fmt.Sprint(got) != fmt.Sprint(tc.want) || len(got) != len(tc.want) {
				t.Errorf("TailFile = %q, want %q", got, tc.want)
			}
		})
	}
}
