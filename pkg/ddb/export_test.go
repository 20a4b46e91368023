package ddb

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// CheckHealth runs component's health check once, as each tick of WatchHealth does.
func CheckHealth(ctx context.Context, client *dynamodb.Client, component string, t Tables) error {
	probes, err := healthProbes(component, t)
	if err != nil {
		return err
	}
	return probeTables(ctx, client, probes)
}
