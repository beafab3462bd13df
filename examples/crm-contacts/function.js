// Contacts into a CRM mailing list, driven by settings: identify upserts the contact (traits mapped to the
// CRM's fields by `fieldMapping`, tagged with `tags`), a "Newsletter Unsubscribed" track unsubscribes it.
// The API key is a sensitive setting: it comes from a Secret and is redacted from logs and traces.

function contactUrl(settings, email) {
  // The CRM addresses a contact by the MD5 of its lower-cased address, as Mailchimp does.
  const id = crypto.createHash('md5').update(email.toLowerCase()).digest('hex');
  return new URL(`/3.0/lists/${encodeURIComponent(settings.listId)}/members/${id}`, settings.baseUrl);
}

async function put(url, body, settings) {
  const res = await fetch(url, {
    method: 'PUT',
    headers: new Headers({
      Authorization: `Basic ${btoa(`dfn:${settings.apiKey}`)}`,
      'Content-Type': 'application/json',
    }),
    body: JSON.stringify(body),
  });
  if (res.status === 429 || res.status >= 500) throw new RetryError(`CRM answered ${res.status}`);
  if (!res.ok) throw new ValidationError(`CRM refused the contact: ${res.status} ${await res.text()}`);
}

async function onIdentify(event, settings) {
  const email = event.traits?.email;
  if (!_.isString(email) || !email.includes('@')) {
    throw new InvalidEventPayload('identify events need traits.email');
  }
  const fields = {};
  for (const [trait, field] of Object.entries(settings.fieldMapping ?? {})) {
    if (event.traits[trait] !== undefined) fields[field] = event.traits[trait];
  }
  await put(
    contactUrl(settings, email),
    {
      email_address: email,
      status_if_new: settings.doubleOptIn ? 'pending' : 'subscribed',
      merge_fields: fields,
      tags: settings.tags ?? [],
    },
    settings,
  );
  console.log(`upserted contact ${event.userId ?? event.anonymousId}`);
}

async function onTrack(event, settings) {
  if (event.event !== 'Newsletter Unsubscribed') {
    throw new EventNotSupported(`${event.event} is not sent to the CRM`);
  }
  const email = event.properties?.email ?? event.context?.traits?.email;
  if (!_.isString(email)) throw new InvalidEventPayload('unsubscribes need an email address');
  await put(contactUrl(settings, email), { email_address: email, status: 'unsubscribed' }, settings);
}
