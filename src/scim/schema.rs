//! The schema registry (DESIGN 3): every attribute of User, Group and EnterpriseUser with
//! its type, plurality, mutability, `returned`, uniqueness and case sensitivity (RFC 7643
//! §4, §7, §8.7). Validation, projection, filters, PATCH and discovery all read it.

use std::sync::LazyLock;

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    /// The RFC 7643 §7 name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Binary => "binary",
            Self::Reference => "reference",
            Self::Complex => "complex",
        }
    }
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub description: String,
    pub canonical_values: Vec<String>,
    pub reference_types: Vec<String>,
    pub sub_attributes: Vec<Attribute>,
}

impl Attribute {
    fn new(name: &str, ty: AttrType) -> Self {
        Self {
            name: name.to_owned(),
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            description: String::new(),
            canonical_values: Vec::new(),
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }
    fn string(name: &str) -> Self {
        Self::new(name, AttrType::String)
    }
    fn boolean(name: &str) -> Self {
        Self::new(name, AttrType::Boolean)
    }
    fn date_time(name: &str) -> Self {
        Self::new(name, AttrType::DateTime)
    }
    fn reference(name: &str, types: &[&str]) -> Self {
        let mut a = Self::new(name, AttrType::Reference);
        a.reference_types = types.iter().map(|t| (*t).to_owned()).collect();
        a.case_exact = true;
        a
    }
    fn complex(name: &str, subs: Vec<Attribute>) -> Self {
        let mut a = Self::new(name, AttrType::Complex);
        a.sub_attributes = subs;
        a
    }
    fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    fn mutability(mut self, m: Mutability) -> Self {
        self.mutability = m;
        self
    }
    fn returned(mut self, r: Returned) -> Self {
        self.returned = r;
        self
    }
    fn unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    fn canonical(mut self, values: &[&str]) -> Self {
        self.canonical_values = values.iter().map(|v| (*v).to_owned()).collect();
        self
    }
    fn describe(mut self, text: &str) -> Self {
        self.description = text.to_owned();
        self
    }

    /// The sub-attribute named `name`, compared case-insensitively (RFC 7643 §2.1).
    pub fn sub_attribute(&self, name: &str) -> Option<&Attribute> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema (RFC 7643 §7): a URN and its attributes.
#[derive(Debug, Clone)]
pub struct Schema {
    pub id: String,
    pub name: String,
    pub description: String,
    pub attributes: Vec<Attribute>,
}

impl Schema {
    /// The attribute named `name`, compared case-insensitively.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema extension of a resource type.
#[derive(Debug, Clone)]
pub struct SchemaExtension {
    pub schema: String,
    pub required: bool,
}

/// A resource type (RFC 7643 §6).
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    pub description: String,
    pub schema: String,
    pub extensions: Vec<SchemaExtension>,
}

/// Every schema and resource type the server knows: the core, plus a tenant's registered
/// extensions (`scim::extension`).
#[derive(Debug, Clone)]
pub struct Registry {
    /// RFC 7643 §3.1 common attributes (`id`, `externalId`, `meta`).
    pub common: Vec<Attribute>,
    pub schemas: Vec<Schema>,
    pub resource_types: Vec<ResourceType>,
}

static CORE: LazyLock<Registry> = LazyLock::new(build_core);
static CORE_SHARED: LazyLock<std::sync::Arc<Registry>> =
    LazyLock::new(|| std::sync::Arc::new(build_core()));

impl Registry {
    /// The built-in registry: User, Group and EnterpriseUser.
    pub fn core() -> &'static Registry {
        &CORE
    }

    /// The built-in registry, shared (what a tenant without extensions uses).
    pub fn core_shared() -> std::sync::Arc<Registry> {
        CORE_SHARED.clone()
    }

    /// This registry with `schema` added as an extension of the resource type named
    /// `resource_type` (never required: resources written before it stay valid).
    pub fn extended(&self, schema: Schema, resource_type: &str) -> Registry {
        let mut registry = self.clone();
        if let Some(rt) = registry
            .resource_types
            .iter_mut()
            .find(|rt| rt.name == resource_type)
        {
            rt.extensions.push(SchemaExtension {
                schema: schema.id.clone(),
                required: false,
            });
        }
        registry.schemas.push(schema);
        registry
    }

    /// The schema with URN `id`, compared case-insensitively (URNs are, RFC 8141).
    pub fn schema(&self, id: &str) -> Option<&Schema> {
        self.schemas.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.resource_types.iter().find(|r| r.name == name)
    }

    /// The common attribute named `name` (`id`, `externalId`, `meta`).
    pub fn common_attribute(&self, name: &str) -> Option<&Attribute> {
        self.common
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The User resource type.
    pub fn user(&self) -> &ResourceType {
        &self.resource_types[0]
    }

    /// The Group resource type.
    pub fn group(&self) -> &ResourceType {
        &self.resource_types[1]
    }
}

fn multi_valued_common(value: Attribute, types: &[&str]) -> Attribute {
    Attribute::complex(
        value.name.clone().as_str(),
        vec![
            Attribute {
                name: "value".to_owned(),
                ..value
            },
            Attribute::string("display"),
            Attribute::string("type").canonical(types),
            Attribute::boolean("primary"),
        ],
    )
    .multi()
}

fn build_core() -> Registry {
    use Mutability::*;
    let common = vec![
        Attribute::string("id")
            .case_exact()
            .mutability(ReadOnly)
            .returned(Returned::Always)
            .unique()
            .describe("Unique identifier for the SCIM resource, issued by the service provider."),
        Attribute::string("externalId")
            .case_exact()
            .describe("Identifier of the resource as defined by the provisioning client."),
        Attribute::complex(
            "meta",
            vec![
                Attribute::string("resourceType")
                    .case_exact()
                    .mutability(ReadOnly),
                Attribute::date_time("created").mutability(ReadOnly),
                Attribute::date_time("lastModified").mutability(ReadOnly),
                Attribute::reference("location", &["uri"]).mutability(ReadOnly),
                Attribute::string("version")
                    .case_exact()
                    .mutability(ReadOnly),
            ],
        )
        .mutability(ReadOnly)
        .describe("Resource metadata."),
    ];

    let name = Attribute::complex(
        "name",
        vec![
            Attribute::string("formatted"),
            Attribute::string("familyName"),
            Attribute::string("givenName"),
            Attribute::string("middleName"),
            Attribute::string("honorificPrefix"),
            Attribute::string("honorificSuffix"),
        ],
    )
    .describe("The components of the user's real name.");

    let addresses = Attribute::complex(
        "addresses",
        vec![
            Attribute::string("formatted"),
            Attribute::string("streetAddress"),
            Attribute::string("locality"),
            Attribute::string("region"),
            Attribute::string("postalCode"),
            Attribute::string("country"),
            Attribute::string("type").canonical(&["work", "home", "other"]),
            Attribute::boolean("primary"),
        ],
    )
    .multi()
    .describe("A physical mailing address for this user.");

    let groups = Attribute::complex(
        "groups",
        vec![
            Attribute::string("value").mutability(ReadOnly),
            Attribute::reference("$ref", &["User", "Group"]).mutability(ReadOnly),
            Attribute::string("display").mutability(ReadOnly),
            Attribute::string("type")
                .canonical(&["direct", "indirect"])
                .mutability(ReadOnly),
        ],
    )
    .multi()
    .mutability(ReadOnly)
    .describe("Groups the user belongs to, directly or through nested groups.");

    let user = Schema {
        id: USER_URN.to_owned(),
        name: "User".to_owned(),
        description: "User Account".to_owned(),
        attributes: vec![
            Attribute::string("userName")
                .required()
                .unique()
                .describe("Unique identifier for the user, used to authenticate."),
            name,
            Attribute::string("displayName"),
            Attribute::string("nickName"),
            Attribute::reference("profileUrl", &["external"]),
            Attribute::string("title"),
            Attribute::string("userType"),
            Attribute::string("preferredLanguage"),
            Attribute::string("locale"),
            Attribute::string("timezone"),
            Attribute::boolean("active"),
            Attribute::string("password")
                .mutability(WriteOnly)
                .returned(Returned::Never)
                .describe("Accepted and discarded: scimbus never stores passwords."),
            multi_valued_common(Attribute::string("emails"), &["work", "home", "other"]),
            multi_valued_common(
                Attribute::string("phoneNumbers"),
                &["work", "home", "mobile", "fax", "pager", "other"],
            ),
            multi_valued_common(
                Attribute::string("ims"),
                &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"],
            ),
            multi_valued_common(
                Attribute::reference("photos", &["external"]),
                &["photo", "thumbnail"],
            ),
            addresses,
            groups,
            multi_valued_common(Attribute::string("entitlements"), &[]),
            multi_valued_common(Attribute::string("roles"), &[]),
            multi_valued_common(Attribute::new("x509Certificates", AttrType::Binary), &[]),
        ],
    };

    let group = Schema {
        id: GROUP_URN.to_owned(),
        name: "Group".to_owned(),
        description: "Group".to_owned(),
        attributes: vec![
            Attribute::string("displayName")
                .required()
                .unique()
                .describe("A human-readable name for the group, unique within the tenant."),
            Attribute::complex(
                "members",
                vec![
                    Attribute::string("value")
                        .case_exact()
                        .mutability(Immutable),
                    Attribute::reference("$ref", &["User", "Group"]).mutability(Immutable),
                    // The member's own name, derived by the server (RFC 7643 §2.4 makes
                    // `display` of a reference non-writable); a client's value is ignored.
                    Attribute::string("display").mutability(ReadOnly),
                    Attribute::string("type")
                        .canonical(&["User", "Group"])
                        .mutability(Immutable),
                ],
            )
            .multi()
            .describe("A list of members of the group."),
        ],
    };

    let enterprise = Schema {
        id: ENTERPRISE_USER_URN.to_owned(),
        name: "EnterpriseUser".to_owned(),
        description: "Enterprise User".to_owned(),
        attributes: vec![
            Attribute::string("employeeNumber"),
            Attribute::string("costCenter"),
            Attribute::string("organization"),
            Attribute::string("division"),
            Attribute::string("department"),
            Attribute::complex(
                "manager",
                vec![
                    Attribute::string("value").case_exact(),
                    Attribute::reference("$ref", &["User"]),
                    Attribute::string("displayName").mutability(ReadOnly),
                ],
            ),
        ],
    };

    Registry {
        common,
        schemas: vec![user, group, enterprise],
        resource_types: vec![
            ResourceType {
                id: "User".to_owned(),
                name: "User".to_owned(),
                endpoint: "/Users".to_owned(),
                description: "User Account".to_owned(),
                schema: USER_URN.to_owned(),
                extensions: vec![SchemaExtension {
                    schema: ENTERPRISE_USER_URN.to_owned(),
                    required: false,
                }],
            },
            ResourceType {
                id: "Group".to_owned(),
                name: "Group".to_owned(),
                endpoint: "/Groups".to_owned(),
                description: "Group".to_owned(),
                schema: GROUP_URN.to_owned(),
                extensions: Vec::new(),
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_lookup_is_case_insensitive() {
        let r = Registry::core();
        let user = r.schema(USER_URN).unwrap();
        assert_eq!(user.attribute("USERNAME").unwrap().name, "userName");
        assert_eq!(
            user.attribute("emails")
                .unwrap()
                .sub_attribute("Primary")
                .unwrap()
                .ty,
            AttrType::Boolean
        );
        assert!(r.schema(&ENTERPRISE_USER_URN.to_uppercase()).is_some());
    }

    #[test]
    fn readonly_and_never_returned_attributes_are_marked() {
        let r = Registry::core();
        let user = r.schema(USER_URN).unwrap();
        assert_eq!(
            user.attribute("groups").unwrap().mutability,
            Mutability::ReadOnly
        );
        assert_eq!(
            user.attribute("password").unwrap().returned,
            Returned::Never
        );
        assert_eq!(r.common_attribute("id").unwrap().returned, Returned::Always);
        let group = r.schema(GROUP_URN).unwrap();
        assert_eq!(
            group.attribute("displayName").unwrap().uniqueness,
            Uniqueness::Server
        );
    }
}
