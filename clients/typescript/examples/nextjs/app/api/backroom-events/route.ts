// A Next.js route handler receiving Backroom's storefront events (Standard Webhooks).
// It verifies the signature on the raw body, then invalidates what the event changed:
// `product:{id}` for an item, `products` for lists, `collections` for a published surface.
import { revalidateTag } from "next/cache";
import { Webhook } from "standardwebhooks";

const webhook = new Webhook(process.env.BACKROOM_WEBHOOK_SECRET!); // whsec_... from `backroom endpoints add`

type BackroomEvent = {
  type: string;
  timestamp: string;
  data: { id?: number; resource: string; seq: number; surface?: string; changed?: Record<string, unknown> };
};

export async function POST(request: Request): Promise<Response> {
  const body = await request.text();
  let event: BackroomEvent;
  try {
    event = webhook.verify(body, Object.fromEntries(request.headers)) as BackroomEvent;
  } catch {
    return new Response("invalid signature", { status: 400 });
  }
  if (event.data.resource === "item" && event.data.id !== undefined) {
    revalidateTag(`product:${event.data.id}`);
    revalidateTag("products");
  } else if (event.data.resource === "surface") {
    revalidateTag("collections");
  }
  return new Response(null, { status: 204 });
}
