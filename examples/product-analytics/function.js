// Product events to an analytics collector, sent as they arrive: what reaches this function has already
// passed the instance's destination filters, and data control has removed the fields it must not see
// (see functioninstance.yaml), so the function itself forwards without choosing.

async function collect(kind, event, settings) {
  const res = await fetch(new URL(`/collect/${kind}`, settings.collectorUrl), {
    method: 'POST',
    headers: new Headers({ 'Content-Type': 'application/json', 'X-Write-Key': settings.writeKey }),
    body: JSON.stringify({
      id: event.messageId,
      user: event.userId ?? event.anonymousId,
      name: event.event ?? event.name,
      properties: event.properties ?? {},
      context: event.context ?? {},
      at: event.timestamp,
    }),
  });
  if (res.status === 429 || res.status >= 500) throw new RetryError(`collector answered ${res.status}`);
  if (!res.ok) throw new ValidationError(`collector refused the event: ${res.status}`);
}

async function onTrack(event, settings) {
  await collect('event', event, settings);
}

async function onPage(event, settings) {
  await collect('page', event, settings);
}
