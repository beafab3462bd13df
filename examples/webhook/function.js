// A destination function as Segment users write it: forwards track and identify events to a webhook,
// signing each body with HMAC and authenticating with HTTP basic auth.

async function send(event, settings) {
  const url = new URL('/events', settings.endpoint);
  url.searchParams.set('type', event.type);
  const body = JSON.stringify(event);
  const res = await fetch(url, {
    method: 'POST',
    headers: new Headers({
      Authorization: `Basic ${btoa(`${settings.apiKey}:`)}`,
      'Content-Type': 'application/json',
      'X-Signature': crypto.createHmac('sha256', settings.apiKey).update(body).digest('hex'),
    }),
    body,
  });
  if (res.status >= 500 || res.status === 429) {
    throw new RetryError(`webhook answered ${res.status}`);
  }
  if (!res.ok) {
    throw new ValidationError(`webhook rejected the event: ${res.status} ${await res.text()}`);
  }
  console.log(`delivered ${event.type} ${event.messageId} → ${res.status}`);
}

async function onTrack(event, settings) {
  if (!_.isString(event.event) || event.event === '') {
    throw new InvalidEventPayload('track events need an event name');
  }
  await send(event, settings);
}

async function onIdentify(event, settings) {
  if (!event.traits?.email) {
    throw new ValidationError('identify events need traits.email');
  }
  await send(event, settings);
}
