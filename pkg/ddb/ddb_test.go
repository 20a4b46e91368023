package ddb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/trigger-api/trigger-api/pkg/ddb"
	"github.com/trigger-api/trigger-api/pkg/storage"
)

type noCredentials struct{}

func (noCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, errors.New("no role to assume")
}

// Credentials that cannot be had (an IRSA token or instance role out of reach) are
// unavailability, which the HTTP layer answers 503, not a bug in the request.
func TestMissingCredentialsAreUnavailability(t *testing.T) {
	client, err := ddb.NewClient(context.Background(), ddb.Settings{Region: "eu-west-1", Endpoint: "http://127.0.0.1:9"},
		config.WithCredentialsProvider(noCredentials{}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("t"), Key: ddb.Item{"pk": ddb.S("x")}})
	if err == nil {
		t.Fatal("get item without credentials succeeded")
	}
	if got := ddb.Translate(err); !errors.Is(got, storage.ErrUnavailable) {
		t.Fatalf("translated %v, want ErrUnavailable", got)
	}
}
