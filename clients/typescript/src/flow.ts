// A provider CRM's referral-to-payment flow, through a client generated from the committed
// OpenAPI document (openapi-typescript + openapi-fetch), against a running sandbox server.
// Usage: PRAP_URL=http://127.0.0.1:8765 node dist/flow.js
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type CallerAction = components["schemas"]["CallerAction"];
type CreateClaimProblemCode = components["schemas"]["CreateClaimProblemCode"];

const baseUrl = process.env.PRAP_URL ?? "http://127.0.0.1:8000";
const api = createClient<paths>({ baseUrl });

function check(condition: boolean, message: string): asserts condition {
  if (!condition) {
    throw new Error(message);
  }
}

async function token(body: components["schemas"]["TokenRequest"]): Promise<Record<string, string>> {
  const { data, error } = await api.POST("/v1/sandbox/tokens", { body });
  check(data !== undefined, `token: ${JSON.stringify(error)}`);
  return { Authorization: `Bearer ${data.access_token}` };
}

async function main(): Promise<void> {
  const run = Date.now() % 100000;
  const today = "2026-03-02";
  const clock = await api.PUT("/v1/sandbox/clock", { body: { now: `${today}T09:00:00Z` } });
  check(clock.data?.today === today, "the sandbox clock stands still");

  const admin = await token({ sub: "ts-operator", role: "admin" });
  const jcp = await token({ sub: "ts-coach", role: "jcp" });
  const post = await token({ sub: "ts-support", role: "post" });
  const adviser = await token({ sub: "ts-adviser", role: "provider", provider_id: "P100", scope: "referrals" });
  const clerk = await token({ sub: "ts-clerk", role: "provider", provider_id: "P100", scope: "claims" });

  const contract = await api.POST("/v1/contracts", {
    headers: { ...admin, "Idempotency-Key": `ts-contract-${run}` },
    body: {
      provider_id: "P100",
      programme: "SES",
      start_date: "2026-01-01",
      end_date: "2028-12-31",
      monthly_service_fee_pence: 0,
      attachment_fee_pence: 50000,
    },
  });
  check(contract.response.status === 201, `contract: ${JSON.stringify(contract.error)}`);

  const nino = `AB${String(run).padStart(6, "0")}C`;
  const created = await api.POST("/v1/referrals", {
    headers: { ...jcp, "Idempotency-Key": `ts-referral-${run}` },
    body: {
      programme: "SES",
      provider_id: "P100",
      participant: { forename: "Ada", surname: "Example", nino },
    },
  });
  check(created.data !== undefined, `referral: ${JSON.stringify(created.error)}`);
  const id = created.data.id;
  check(created.response.headers.get("location") === `/v1/referrals/${id}`, "Location");
  const params = { path: { id } };

  const fetched = await api.GET("/v1/referrals/{id}", { params, headers: adviser });
  check(fetched.data !== undefined, "get referral");
  const etag = fetched.response.headers.get("etag");
  check(etag === `"${fetched.data.version}"`, "ETag is the version");
  const unchanged = await api.GET("/v1/referrals/{id}", {
    params: { ...params, header: { "If-None-Match": etag } },
    headers: adviser,
  });
  check(unchanged.response.status === 304, "If-None-Match gives 304");

  const accepted = await api.POST("/v1/referrals/{id}/accept", {
    params: { ...params, header: { "If-Match": etag } },
    headers: adviser,
    body: {},
  });
  check(accepted.data?.status === "accepted", `accept: ${JSON.stringify(accepted.error)}`);
  const next: CallerAction[] = accepted.data.allowed_actions;
  check(next.includes("start"), "start is allowed next");

  const stale = await api.POST("/v1/referrals/{id}/reject", {
    params: { ...params, header: { "If-Match": etag } },
    headers: adviser,
    body: { reason: "other" },
  });
  check(stale.error?.code === "precondition-failed", "a stale If-Match is 412");

  const started = await api.POST("/v1/referrals/{id}/start", {
    params,
    headers: adviser,
    body: { start_date: today },
  });
  check(started.data?.status === "started", `start: ${JSON.stringify(started.error)}`);

  const refused = await api.POST("/v1/claims", {
    headers: adviser,
    body: { referral_id: id, claim_type: "attachment" },
  });
  const code: CreateClaimProblemCode | undefined = refused.error?.code;
  check(code === "forbidden" || code === "segregation-of-duties", "the adviser may not claim");

  const claim = await api.POST("/v1/claims", {
    headers: { ...clerk, "Idempotency-Key": `ts-claim-${run}` },
    body: { referral_id: id, claim_type: "attachment" },
  });
  check(claim.data !== undefined, `claim: ${JSON.stringify(claim.error)}`);
  const validated = await api.POST("/v1/claims/{id}/validate", {
    params: { path: { id: claim.data.id } },
    headers: post,
    body: {},
  });
  check(validated.data?.status === "validated", `validate: ${JSON.stringify(validated.error)}`);

  const payment = await api.POST("/v1/payment-runs", {
    headers: { ...post, "Idempotency-Key": `ts-run-${run}` },
    body: { month: "2026-03" },
  });
  check(payment.data !== undefined, `payment run: ${JSON.stringify(payment.error)}`);
  const paid = payment.data.lines.filter((line) => line.claim_id === claim.data.id);
  check(paid.length === 1 && paid[0]?.amount_pence === 50000, "the claim is paid once");

  await api.DELETE("/v1/sandbox/clock");
  console.log(`referral-to-payment flow passed: referral ${id}, run ${payment.data.id}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
