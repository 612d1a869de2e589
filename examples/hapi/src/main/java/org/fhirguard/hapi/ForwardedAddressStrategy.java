package org.fhirguard.hapi;

import ca.uhn.fhir.rest.server.IServerAddressStrategy;
import ca.uhn.fhir.rest.server.IncomingRequestAddressStrategy;
import jakarta.servlet.ServletContext;
import jakarta.servlet.http.HttpServletRequest;
import java.util.regex.Pattern;

/**
 * The base URL HAPI writes into Location, Content-Location, Bundle links and fullUrls, taken
 * from what fhirguard's proxy says the client asked for: X-Forwarded-Proto, X-Forwarded-Host
 * and X-Forwarded-Prefix (the public FHIR base path). Behind fhirguard the server listens only
 * on a Unix socket only the proxy can reach, and the proxy sets these three itself (a client's
 * own values never pass it), so they can be trusted here; a value of the wrong shape is not
 * used. Without X-Forwarded-Host the request's own address is the base, as HAPI's default.
 */
public class ForwardedAddressStrategy implements IServerAddressStrategy {

	private static final Pattern PROTO = Pattern.compile("https?");
	private static final Pattern HOST = Pattern.compile("[A-Za-z0-9.\\-]+(:[0-9]{1,5})?|\\[[0-9A-Fa-f:.]+\\](:[0-9]{1,5})?");
	private static final Pattern PREFIX = Pattern.compile("(/[A-Za-z0-9._~\\-]+)*/?");

	private final IncomingRequestAddressStrategy myFallback = new IncomingRequestAddressStrategy();

	@Override
	public String determineServerBase(ServletContext theServletContext, HttpServletRequest theRequest) {
		String host = theRequest.getHeader("X-Forwarded-Host");
		String proto = theRequest.getHeader("X-Forwarded-Proto");
		String prefix = theRequest.getHeader("X-Forwarded-Prefix");
		if (host == null || !HOST.matcher(host).matches()) {
			return myFallback.determineServerBase(theServletContext, theRequest);
		}
		String scheme = proto != null && PROTO.matcher(proto).matches() ? proto : "http";
		String path = prefix != null && PREFIX.matcher(prefix).matches() ? prefix.replaceAll("/+$", "") : "";
		return scheme + "://" + host + path;
	}
}
