//! Open newtypes for the two one-byte registries of RADIUS: packet codes and attribute types.
//!
//! Unknown values are kept as they are, so a packet with an unregistered code or attribute
//! type parses and emits unchanged; `Debug` prints the registered name when there is one.

/// Declares an open one-byte newtype with named constants and a name table.
macro_rules! open_u8 {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$cmeta:meta])* $konst:ident = $val:literal => $label:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u8);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($val); )*

            /// The registered name of this value, if it is one this crate knows.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($label), )*
                    _ => None,
                }
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl From<u8> for $name {
            fn from(v: u8) -> Self {
                $name(v)
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                v.0
            }
        }
    };
}

open_u8! {
    /// RADIUS packet code (RFC 2865 §3, RFC 2866, RFC 5997).
    Code {
        /// Access-Request (RFC 2865).
        ACCESS_REQUEST = 1 => "Access-Request",
        /// Access-Accept (RFC 2865).
        ACCESS_ACCEPT = 2 => "Access-Accept",
        /// Access-Reject (RFC 2865).
        ACCESS_REJECT = 3 => "Access-Reject",
        /// Accounting-Request (RFC 2866).
        ACCOUNTING_REQUEST = 4 => "Accounting-Request",
        /// Accounting-Response (RFC 2866).
        ACCOUNTING_RESPONSE = 5 => "Accounting-Response",
        /// Access-Challenge (RFC 2865).
        ACCESS_CHALLENGE = 11 => "Access-Challenge",
        /// Status-Server (RFC 5997).
        STATUS_SERVER = 12 => "Status-Server",
        /// Status-Client (reserved, RFC 2865).
        STATUS_CLIENT = 13 => "Status-Client",
        /// Disconnect-Request (RFC 5176).
        DISCONNECT_REQUEST = 40 => "Disconnect-Request",
        /// Disconnect-ACK (RFC 5176).
        DISCONNECT_ACK = 41 => "Disconnect-ACK",
        /// Disconnect-NAK (RFC 5176).
        DISCONNECT_NAK = 42 => "Disconnect-NAK",
        /// CoA-Request (RFC 5176).
        COA_REQUEST = 43 => "CoA-Request",
        /// CoA-ACK (RFC 5176).
        COA_ACK = 44 => "CoA-ACK",
        /// CoA-NAK (RFC 5176).
        COA_NAK = 45 => "CoA-NAK",
    }
}

impl Code {
    /// Whether a client sends this code as a request that this crate's [`Client`](crate::Client)
    /// can track (Access-Request, Accounting-Request, Status-Server).
    pub fn is_client_request(self) -> bool {
        matches!(
            self,
            Code::ACCESS_REQUEST | Code::ACCOUNTING_REQUEST | Code::STATUS_SERVER
        )
    }

    /// Whether `response` is a valid answer to a request with this code.
    ///
    /// Status-Server may be answered by Access-Accept (authentication port) or
    /// Accounting-Response (accounting port), RFC 5997 §3.
    pub fn accepts_response(self, response: Code) -> bool {
        match self {
            Code::ACCESS_REQUEST => matches!(
                response,
                Code::ACCESS_ACCEPT | Code::ACCESS_REJECT | Code::ACCESS_CHALLENGE
            ),
            Code::ACCOUNTING_REQUEST => response == Code::ACCOUNTING_RESPONSE,
            Code::STATUS_SERVER => {
                matches!(response, Code::ACCESS_ACCEPT | Code::ACCOUNTING_RESPONSE)
            }
            _ => false,
        }
    }
}

open_u8! {
    /// RADIUS attribute type (RFC 2865 §5, RFC 2866, RFC 2869, RFC 3579, RFC 3162, RFC 4372).
    AttributeType {
        /// User-Name (1).
        USER_NAME = 1 => "User-Name",
        /// User-Password (2).
        USER_PASSWORD = 2 => "User-Password",
        /// CHAP-Password (3).
        CHAP_PASSWORD = 3 => "CHAP-Password",
        /// NAS-IP-Address (4).
        NAS_IP_ADDRESS = 4 => "NAS-IP-Address",
        /// NAS-Port (5).
        NAS_PORT = 5 => "NAS-Port",
        /// Service-Type (6).
        SERVICE_TYPE = 6 => "Service-Type",
        /// Framed-Protocol (7).
        FRAMED_PROTOCOL = 7 => "Framed-Protocol",
        /// Framed-IP-Address (8).
        FRAMED_IP_ADDRESS = 8 => "Framed-IP-Address",
        /// Framed-MTU (12).
        FRAMED_MTU = 12 => "Framed-MTU",
        /// Login-IP-Host (14).
        LOGIN_IP_HOST = 14 => "Login-IP-Host",
        /// Login-Service (15).
        LOGIN_SERVICE = 15 => "Login-Service",
        /// Reply-Message (18).
        REPLY_MESSAGE = 18 => "Reply-Message",
        /// State (24).
        STATE = 24 => "State",
        /// Class (25).
        CLASS = 25 => "Class",
        /// Vendor-Specific (26).
        VENDOR_SPECIFIC = 26 => "Vendor-Specific",
        /// Session-Timeout (27).
        SESSION_TIMEOUT = 27 => "Session-Timeout",
        /// Idle-Timeout (28).
        IDLE_TIMEOUT = 28 => "Idle-Timeout",
        /// Termination-Action (29).
        TERMINATION_ACTION = 29 => "Termination-Action",
        /// Called-Station-Id (30).
        CALLED_STATION_ID = 30 => "Called-Station-Id",
        /// Calling-Station-Id (31).
        CALLING_STATION_ID = 31 => "Calling-Station-Id",
        /// NAS-Identifier (32).
        NAS_IDENTIFIER = 32 => "NAS-Identifier",
        /// Proxy-State (33).
        PROXY_STATE = 33 => "Proxy-State",
        /// Acct-Status-Type (40).
        ACCT_STATUS_TYPE = 40 => "Acct-Status-Type",
        /// Acct-Session-Id (44).
        ACCT_SESSION_ID = 44 => "Acct-Session-Id",
        /// Event-Timestamp (55).
        EVENT_TIMESTAMP = 55 => "Event-Timestamp",
        /// NAS-Port-Type (61).
        NAS_PORT_TYPE = 61 => "NAS-Port-Type",
        /// Connect-Info (77).
        CONNECT_INFO = 77 => "Connect-Info",
        /// EAP-Message (79, RFC 3579).
        EAP_MESSAGE = 79 => "EAP-Message",
        /// Message-Authenticator (80, RFC 3579).
        MESSAGE_AUTHENTICATOR = 80 => "Message-Authenticator",
        /// Acct-Interim-Interval (85).
        ACCT_INTERIM_INTERVAL = 85 => "Acct-Interim-Interval",
        /// NAS-Port-Id (87).
        NAS_PORT_ID = 87 => "NAS-Port-Id",
        /// Chargeable-User-Identity (89, RFC 4372).
        CHARGEABLE_USER_IDENTITY = 89 => "Chargeable-User-Identity",
        /// NAS-IPv6-Address (95, RFC 3162).
        NAS_IPV6_ADDRESS = 95 => "NAS-IPv6-Address",
        /// Error-Cause (101, RFC 5176).
        ERROR_CAUSE = 101 => "Error-Cause",
        /// EAP-Key-Name (102, RFC 7268).
        EAP_KEY_NAME = 102 => "EAP-Key-Name",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_and_debug_names() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(Code::from(v)), v);
            assert_eq!(u8::from(AttributeType::from(v)), v);
        }
        assert_eq!(format!("{:?}", Code::ACCESS_CHALLENGE), "Access-Challenge");
        assert_eq!(format!("{:?}", Code(200)), "Code(200)");
        assert_eq!(format!("{:?}", AttributeType::EAP_MESSAGE), "EAP-Message");
        assert_eq!(AttributeType(250).name(), None);
    }

    #[test]
    fn response_codes_match_requests() {
        assert!(Code::ACCESS_REQUEST.accepts_response(Code::ACCESS_CHALLENGE));
        assert!(!Code::ACCESS_REQUEST.accepts_response(Code::ACCOUNTING_RESPONSE));
        assert!(Code::ACCOUNTING_REQUEST.accepts_response(Code::ACCOUNTING_RESPONSE));
        assert!(Code::STATUS_SERVER.accepts_response(Code::ACCESS_ACCEPT));
        assert!(!Code::ACCESS_ACCEPT.accepts_response(Code::ACCESS_ACCEPT));
        assert!(Code::STATUS_SERVER.is_client_request());
        assert!(!Code::ACCESS_ACCEPT.is_client_request());
    }
}
