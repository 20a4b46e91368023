package ddb

import (
	"context"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// A client no one holds any more takes its direct path with it: nothing the registry keeps
// points back at the client, so neither stays alive for the process's life.
func TestDirectPathGoesWithItsClient(t *testing.T) {
	client, err := NewClient(context.Background(), Settings{Endpoint: "http://127.0.0.1:1", Region: "us-east-1"},
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("a", "b", "")))
	if err != nil {
		t.Fatal(err)
	}
	key := weak.Make(client)
	v, ok := directs.Load(key)
	if !ok {
		t.Fatal("NewClient registered no direct path")
	}
	direct := weak.Make(v.(*directPut))
	v, client = nil, nil
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if _, ok := directs.Load(key); !ok && direct.Value() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the client's direct path outlived it")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
